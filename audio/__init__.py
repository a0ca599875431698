"""Sound in and out: frames, resampling, VAD, ASR, TTS. Knows nothing of turns or transports."""

import os

# CTranslate2 (whisper) and llama.cpp run OpenMP thread pools whose idle threads busy-wait by default.
# With several models in one process on few cores, the spinning threads starve each other: measured here
# (2 cores), whisper tiny.en on an 11 s clip took 10-18 s beside another busy process and 1.0 s with
# passive waiting. Must be set before any OpenMP runtime starts, hence here, on first import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
