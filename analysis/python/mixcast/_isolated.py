"""Child process of mixcast.run(..., isolate=True): one simulation in a fresh process (ns-3 keeps
global state, so a process runs at most one ns-3 simulation).
Usage: python -m mixcast._isolated REQUEST.pkl RESULT.pkl"""
import pickle
import sys


def main(argv):
    request_path, result_path = argv
    with open(request_path, "rb") as f:
        request = pickle.load(f)
    from mixcast import results

    def progress(sim_s, done, events):
        print(f"progress {sim_s!r} {done!r} {events}", flush=True)

    try:
        outcome = results.run(request["scenario"], request["engine"],
                              progress=progress if request["progress"] else None, out=request["out"])
    except Exception as e:  # handed to the parent, which raises it
        outcome = e
    with open(result_path, "wb") as f:
        pickle.dump(outcome, f, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
