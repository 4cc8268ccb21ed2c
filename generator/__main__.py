import gc

from .cli import main

if __name__ == "__main__":  # not when a worker process of multiprocessing imports it as __mp_main__
    # A run builds millions of small dicts and lists (parsed manifests, memo entries) and frees almost all of them by
    # reference counting; with the default thresholds (700, 10, 10) the cycle collector walks them over and over for
    # nothing: a one-change render at 1000 services took 4.3 s with them, 3.4-3.7 s with these (README, Performance).
    # Collections still happen, rarely.
    gc.set_threshold(100_000, 50, 100)
    main()
