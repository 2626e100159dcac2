// A map kept as a vector sorted by key: contiguous to walk and to search. For the few dozen
// entries a node keeps per island member, walked on every tick (std::unordered_map chases a
// pointer per entry, which dominated the model engine's time at 10^4+ nodes).
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace mixcast {

template <class K, class V>
class FlatMap {
 public:
  using value_type = std::pair<K, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  iterator begin() { return v_.begin(); }
  iterator end() { return v_.end(); }
  const_iterator begin() const { return v_.begin(); }
  const_iterator end() const { return v_.end(); }
  std::size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }

  iterator find(const K& k) {
    auto it = lower(v_, k);
    return it != v_.end() && it->first == k ? it : v_.end();
  }
  const_iterator find(const K& k) const {
    auto it = lower(v_, k);
    return it != v_.end() && it->first == k ? it : v_.end();
  }
  std::size_t count(const K& k) const { return find(k) != end() ? 1 : 0; }
  // Inserts a default value if `k` is missing; like std::map, but invalidates references.
  V& operator[](const K& k) {
    auto it = lower(v_, k);
    if (it == v_.end() || it->first != k) it = v_.insert(it, value_type{k, V{}});
    return it->second;
  }

 private:
  template <class Vec>
  static auto lower(Vec& v, const K& k) {
    return std::lower_bound(v.begin(), v.end(), k, [](const value_type& e, const K& key) { return e.first < key; });
  }
  std::vector<value_type> v_;
};

}  // namespace mixcast
