"""The duplex core's options, typed, with their defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DuplexOptions:
    # Voice activity: the onset needs ``vad_start_frames`` frames (32 ms each for Silero) above the threshold.
    vad_start_threshold: float = 0.5
    vad_end_threshold: float = 0.35
    vad_start_frames: int = 3
    pre_roll_s: float = 0.3  # audio kept before the onset so the first syllable reaches the ASR
    # End of the user's turn: a short silence ends a segment whose transcript reads as complete; an
    # unfinished one ("I want to book... um...") waits for the long silence before the assistant takes the floor.
    short_silence_s: float = 0.25
    # The transcription and state decision start this far into a pause, before it is known to last: they are
    # the slow steps before an answer. The state head is trained on segments cut at this point (and whole), so
    # a change here wants it retrained: `assistant train-state --speculate-after`.
    speculate_after_s: float = 0.064
    long_silence_s: float = 1.2
    max_segment_s: float = 20.0
    min_segment_s: float = 0.2  # shorter bursts (a click, a tap) are not segments
    # While the assistant speaks: what the user's speech onset does to its voice (0 pauses; 0.3 plays on quietly)
    duck_gain: float = 0.0
    # Before the VAD is sure (it hears a fricative like the "s" of "Stop" 100-200 ms late), ``quick_duck_frames``
    # frames in a row this much louder than the recent floor, and not the assistant's own echo, lower the voice
    # to ``quick_duck_gain`` (None: off); without a confirmed onset within ``quick_duck_confirm_s`` the voice
    # comes back, and a new quick duck waits ``quick_duck_holdoff_s`` (a clatter must not make it flutter).
    quick_duck_gain: float | None = 0.3
    quick_duck_frames: int = 2  # one frame alone is too often a stray echo fragment or a click
    quick_duck_rise_db: float = 15.0
    quick_duck_min_dbfs: float = -45.0
    quick_duck_confirm_s: float = 0.3
    quick_duck_holdoff_s: float = 1.0
    interim_decision_s: float = 1.0  # decide on a long segment before it ends, every this many seconds
    echo_share_threshold: float = 0.6  # a mic frame this much explained by the recent output is own-voice echo
    # Answers
    # The first clause may end before a phrase starter ("The capital of France | is Paris.") once it has this
    # many words: the voice starts a sentence sooner, at a small cost to that sentence's intonation (None: off)
    first_phrase_words: int | None = 4
    tts_lookahead_s: float = 2.5  # synthesise at most this far ahead of what is playing
    # The history sent with each question, in the model's tokens. Attention over a longer prompt slows every
    # token: with 1500, first audio rose from 0.52 s to 0.71 s over a 30-minute soak; with 800 it stayed flat
    # (0.54 / 0.53 s). 800 is ~5 turns of full answers, ~12 of short ones (docs/benchmarks.md, Soak).
    history_token_budget: int = 800
    max_message_tokens: int = 500  # the longest typed message (or turn) kept; longer typed text is refused
    llm_stall_s: float = 15.0  # no progress (a token, a block of prompt read) for this long: hung, restarted
    # Asking again (duplex/clarify.py): a spoken query heard too unsurely gets ``repeat_phrase``, not a guess.
    # whisper's mean token log-probability (None: not on confidence). -0.5 was chosen on the fitted voices
    # (piper joe, espeak en-us: <= 3 % of rightly heard questions asked again); docs/benchmarks.md, Answer quality.
    repeat_below_logprob: float | None = -0.5
    repeat_lone_function_word: bool = True  # "the" alone (a noise, a clipped start) is asked again
    repeat_phrase: str = "Sorry, I didn't catch that. Could you say it again?"
    # An answer to a spoken query whose first sentence only says the question back (duplex/answer_guard.py)
    # is stopped and ``repeat_phrase`` said instead: such echoes follow mishearings. Typed text is not guarded.
    echo_guard: bool = True
    apology: str = "Sorry, something went wrong on my side. Could you say that again?"
    output_sample_rate: int = 48000
    # Camera: frames are sampled (often while the user speaks, rarely when idle), analysed one at a time off
    # the event loop (a frame arriving while one is analysed replaces any waiting one: the latest wins).
    vision_idle_interval_s: float = 2.0
    vision_speech_interval_s: float = 0.5
    vision_recent_frames: int = 8  # the recent-frames buffer
    vision_max_side: int = 1280  # larger frames are downscaled before analysis
    vision_max_input_pixels: int = 40_000_000  # larger frames are refused with a log line (a broken source)
    vision_change_threshold: float = 0.04  # mean absolute change (0-1) below which a frame counts as unchanged
    vision_context_s: float = 3.0  # frames this long before the user began speaking belong to the query
    # A view that changed this long before the user began speaking (or while they spoke) was just shown: a
    # question about "it" then is about the view (duplex/view_reference.py)
    vision_shown_s: float = 3.0
    vision_context_max_age_s: float = 30.0  # an older last frame is no longer taken for what the camera shows
    vision_follow_up_s: float = 30.0  # a short follow-up this soon after a question about the view is one too
    vision_wait_s: float = 0.5  # a query waits this long at most for a frame still being analysed
    vision_yield_to_audio_s: float = 3.0  # a frame's analysis waits this long at most while the ASR runs
    vision_stale_s: float = 5.0  # no frame for this long after some arrived: logged as a stopped camera
