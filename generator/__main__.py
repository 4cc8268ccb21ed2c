import gc
import os
import sys

from .cli import main

if __name__ == "__main__":  # not when a worker process of multiprocessing imports it as __mp_main__
    # A run builds millions of small dicts and lists (parsed manifests, memo entries) and frees almost all of them by
    # reference counting; with the default thresholds (700, 10, 10) the cycle collector walks them over and over for
    # nothing: a one-change render at 1000 services took 4.3 s with them, 3.4-3.7 s with (100,000, 50, 100), and with
    # these 0.18 s of CPU less again (3.01 s against 2.83 s, four runs each, interleaved; its 29 young collections
    # took 0.16 s). A cold one is within the noise (31.6 and 31.6 s of wall time against 28.6 and 31.9 s); peak memory
    # the same. Collections still happen, rarely.
    gc.set_threshold(1_000_000, 50, 100)
    try:
        main()
        code = 0
    except SystemExit as exc:  # click ends every command with one
        code = exc.code
    # Everything is written, every lock and helper process released, by the context managers that made them. What is
    # left is freeing the run's objects one by one, which the kernel does at once: 0.3 s at 1000 services. Not under
    # a profiler or a tracer (python -m cProfile, coverage): they write their results at the ordinary exit.
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
