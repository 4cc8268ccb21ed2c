import gc

from .cli import main

if __name__ == "__main__":  # not when a worker process of multiprocessing imports it as __mp_main__
    # A run builds millions of small dicts and lists (parsed manifests, memo entries) and frees almost all of them by
    # reference counting; with the default threshold (700) the cycle collector walks the young ones thousands of times
    # for nothing: 30 % of a one-change render at 1000 services (bench/scale.py). Collections still happen, rarely.
    gc.set_threshold(100_000, 50, 100)
    main()
