"""Sound in and out: frames, resampling, VAD, ASR, TTS. Knows nothing of turns or transports."""

import os

# CTranslate2 (whisper) and llama.cpp each run a GNU OpenMP thread pool whose idle threads busy-wait for
# a while after every parallel step. On 2 cores the spinning threads of one model starve the other.
# Measured here (2026-11-22): whisper tiny.en on a 3 s clip took 1.07 s beside llama.cpp with threads
# spinning (OMP_WAIT_POLICY=ACTIVE) and 0.46 s with a short spin (GOMP_SPINCOUNT=20000), which also kept
# llama.cpp at 130 tok/s where never spinning (PASSIVE) cut it to 81. Two busy processes at the default
# took 10-18 s per clip. Must be set before an OpenMP runtime loads, hence here, on first import.
os.environ.setdefault("GOMP_SPINCOUNT", "20000")
