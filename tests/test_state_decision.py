"""The listener's state decision (duplex.state): features, hard rules, trained head, training, and real audio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.asr import Transcript, TranscriptSegment
from duplex.conversation import Conversation
from duplex.decision import SegmentEvidence, StateToken
from duplex.models import ChatMessage
from duplex.state.decider import DEFAULT_MODEL_PATH, LearnedStateDecider, RuleStateDecider
from duplex.state.features import FEATURE_NAMES, echo_overlap, last_assistant_asked, segment_features
from duplex.state.head import fit_logistic
from duplex.state.lexicon import is_backchannel
from duplex.state.rules import hard_rule


def transcript(text: str, no_speech: float = 0.05, logprob: float = -0.2, compression: float = 0.9,
               seconds: float = 2.0) -> Transcript:
    segments = (TranscriptSegment(0.0, seconds, text, logprob, no_speech, compression),) if text else ()
    return Transcript(text, "en", segments, seconds)


def evidence(text: str, speech: float = 0.8, speaking: bool = False, assistant_text: str = "",
             tail: tuple[ChatMessage, ...] = (), **asr) -> SegmentEvidence:
    seconds = asr.get("seconds", 2.0)
    frames = int(seconds / 0.032)
    probabilities = np.where(np.arange(frames) < speech * frames, 0.95, 0.02).astype(np.float32)
    return SegmentEvidence(np.zeros(int(seconds * 16000), np.float32), transcript(text, **asr), probabilities,
                           speaking, assistant_text, tail)


# --- features and rules, no models --------------------------------------------------------------------------

def test_features_read_the_question_and_the_acoustics():
    f = segment_features(evidence("What time is it in Tokyo?", speech=0.75))
    assert f.values.shape == (len(FEATURE_NAMES),)
    assert f["question_mark"] == 1 and f["question_word_start"] == 1 and f["imperative_start"] == 0
    assert f["backchannel"] == 0 and f["echo_overlap"] == 0
    assert f["vad_fraction"] == pytest.approx(0.75, abs=0.05) and f["vad_max"] == pytest.approx(0.95)
    assert f["no_speech_prob"] == pytest.approx(0.05)
    assert f.word_count == 6
    assert segment_features(evidence("Set a timer for ten minutes."))["imperative_start"] == 1
    assert segment_features(evidence("Honey, did you feed the cat?"))["vocative"] == 1
    assert segment_features(evidence("I'll be home by six."))["first_person_start"] == 1


def test_backchannel_and_filler_lexicon():
    for text in ("Uh-huh.", "Mm-hmm.", "yeah", "Right.", "Okay.", "I see.", "Yeah, yeah, right.", "Oh, okay.", "Hmm."):
        assert is_backchannel(text), text
    for text in ("Yeah, what time is it?", "Okay, set a timer.", "Right now I need help with dinner", ""):
        assert not is_backchannel(text), text
    assert segment_features(evidence("Um, uh..."))["filler_only"] == 1


def test_echo_overlap_needs_the_same_words_in_order():
    said = "The capital of France is Paris. It has about two million people."
    assert echo_overlap("the capital of France is Paris", said) == 1.0
    assert echo_overlap("has about two million", said) == 1.0
    assert echo_overlap("What is the capital of Spain?", said) < 0.6
    assert echo_overlap("Stop talking please", said) == 0.0
    assert echo_overlap("anything", "") == 0.0


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


def test_conversation_tail_question():
    assert last_assistant_asked((user("set a timer"), assistant("For how long?")))
    assert not last_assistant_asked((assistant("For how long?"), user("ten minutes")))
    assert not last_assistant_asked((assistant("Done."),))
    assert not last_assistant_asked(())


def history_cases() -> dict[str, Conversation]:
    cases = {name: Conversation("system") for name in ("asked", "user_last", "interrupted", "colon_and_camera",
                                                         "empty", "long_user_last", "statement")}
    cases["asked"].add_user("set a timer", 1.0)
    cases["asked"].add_assistant("For how long?", 2.0)
    cases["user_last"].add_assistant("For how long?", 1.0)
    cases["user_last"].add_user("ten minutes", 2.0)
    cases["interrupted"].add_user("tell me more", 1.0)
    cases["interrupted"].add_assistant("Shall I go on?", 2.0, interrupted=True)
    cases["colon_and_camera"].add_user("what is this", 1.0, visual_context="a red mug")
    cases["colon_and_camera"].add_assistant("Two options: red or blue?", 2.0)
    for i in range(3):
        cases["long_user_last"].add_user(f"question {i}", i)
        cases["long_user_last"].add_assistant(f"Answer {i}. Anything else?", i + 0.5)
    cases["long_user_last"].add_user("Stop.", 9.0)
    cases["statement"].add_user("hi", 1.0)
    cases["statement"].add_assistant("Done.  ", 2.0)
    return cases


# What the "role: text" lines of Conversation.tail gave before the tail was typed (computed at bb374ff):
# last_assistant_asked per conversation, and segment_features for two transcripts with no question asked
# (an asked question sets assistant_asked, and short_reply_after_question for the reply "Yes, please.").
ASKED_BEFORE = {"asked": True, "user_last": False, "interrupted": False, "colon_and_camera": True, "empty": False,
                "long_user_last": False, "statement": False}
FEATURES_BEFORE = {
    "Yes, please.": [0.1, -0.3, 1.1, 0.0, 1.0, 0.8999999761581421, 0.8999999761581421, 0.9162907318741551,
                     1.3333333333333333, 1.0986122886681098, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    "What time is it?": [0.1, -0.3, 1.1, 0.0, 1.0, 0.8999999761581421, 0.8999999761581421, 0.9162907318741551,
                         2.6666666666666665, 1.6094379124341003, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
}


def test_the_typed_tail_gives_the_features_the_role_lines_gave():
    for name, conversation in history_cases().items():
        tail = conversation.tail()
        assert all(isinstance(message, ChatMessage) for message in tail), name
        assert last_assistant_asked(tail) == ASKED_BEFORE[name], name
        for text, before in FEATURES_BEFORE.items():
            asked = ASKED_BEFORE[name]
            expected = before + [float(asked), float(asked and text == "Yes, please.")]
            heard = Transcript(text, "en", (TranscriptSegment(0.0, 1.5, text, -0.3, 0.1, 1.1),), 1.5)
            segment = SegmentEvidence(np.zeros(24000, np.float32), heard, np.full(46, 0.9, np.float32), False,
                                      conversation_tail=tail)
            # to the last bit but one: log(3) differs by one ulp between numpy builds (seen 2026-12-02)
            assert segment_features(segment).values.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12), \
                (name, text)
    long_tail = history_cases()["long_user_last"].tail()
    assert [m.role for m in long_tail] == ["assistant", "user", "assistant", "user"]
    assert long_tail[-1] == ChatMessage("user", "Stop.")
    assert history_cases()["interrupted"].tail()[-1].content == "Shall I go on?…"


def test_hard_rules():
    def rule(e):
        return hard_rule(e, segment_features(e))

    assert rule(evidence("")).token == StateToken.IGNORE
    noise = rule(evidence("you", speech=0.0, no_speech=0.9, logprob=-1.4))
    assert noise.token == StateToken.IGNORE and "noise" in noise.reason
    assert rule(evidence("Thank you.", speech=0.05, no_speech=0.8, logprob=-1.2)).token == StateToken.IGNORE
    said = "It is twenty two degrees and sunny. Later this afternoon clouds will move in."
    echo = rule(evidence("later this afternoon clouds will move", speaking=True, assistant_text=said))
    assert echo.token == StateToken.IGNORE and "echo" in echo.reason
    # the same words when the assistant is silent are no echo
    assert rule(evidence("later this afternoon clouds will move", speaking=False, assistant_text=said)) is None
    assert rule(evidence("Uh-huh.")).token == StateToken.IGNORE
    assert rule(evidence("Mm-hmm.", speaking=True, assistant_text=said)).token == StateToken.IGNORE
    # a yes/no reply right after the assistant asked is a reply, not a backchannel
    reply = rule(evidence("Yes, please.", tail=(assistant("Shall I set a timer?"),)))
    assert reply.token == StateToken.QUERY
    assert rule(evidence("Yes, please.")) is None  # out of the blue: the head decides
    assert rule(evidence("Yeah.", tail=(assistant("It is sunny today."),))).token == StateToken.IGNORE
    # a bare "stop" is a command for the assistant, idle or while it speaks
    assert rule(evidence("Stop.", speaking=True, assistant_text=said)).token == StateToken.QUERY
    assert rule(evidence("Never mind.")).token == StateToken.QUERY
    # a real question passes to the model
    assert rule(evidence("What time is it in Tokyo?")) is None


def test_logistic_regression_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(float)
    head = fit_logistic(x, y, l2=0.1)
    accuracy = np.mean((head.probability(x) >= 0.5) == y)
    assert accuracy > 0.97
    assert head.weights[0] > 0 > head.weights[1]
    assert abs(head.weights[2]) < 0.5 * head.weights[0]


def test_shipped_weights_are_small_and_load():
    assert DEFAULT_MODEL_PATH.is_file(), "run `assistant train-state` to train duplex/state/state_model.json"
    assert DEFAULT_MODEL_PATH.stat().st_size < 200 * 1024
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    assert data["feature_names"] == list(FEATURE_NAMES)
    decider = LearnedStateDecider()
    assert decider.variant == "features"
    assert 0 < decider.threshold <= decider.speaking_threshold < 1
    strict = LearnedStateDecider(threshold=0.3, speaking_threshold=0.9)
    assert (strict.threshold, strict.speaking_threshold) == (0.3, 0.9)


def test_a_request_phrased_as_a_statement_is_a_query_only_when_the_assistant_is_idle():
    for text in ("I want to book a table for two.", "Can you tell me a story?", "I went to book, a table for two."):
        verdict = hard_rule(evidence(text), segment_features(evidence(text)))
        assert verdict is not None and verdict.token == StateToken.QUERY and "request" in verdict.reason, text
        speaking = evidence(text, speaking=True, assistant_text="The moon is far away.")
        assert hard_rule(speaking, segment_features(speaking)) is None, text  # the head judges barge-ins
    for text in ("I went to the store yesterday.", "I went to sleep at ten.", "I want to."):
        verdict = hard_rule(evidence(text), segment_features(evidence(text)))
        assert verdict is None or "request" not in verdict.reason, text


def test_a_greeting_to_nobody_named_opens_a_conversation_with_the_silent_assistant():
    for text in ("Hello.", "Hi there, how are you?", "Good morning!", "Hey, how's it going?", "How are you doing?"):
        verdict = hard_rule(evidence(text), segment_features(evidence(text)))
        assert verdict is not None and verdict.token == StateToken.QUERY and "greeting" in verdict.reason, text
        speaking = evidence(text, speaking=True, assistant_text="The moon is far away.")
        verdict = hard_rule(speaking, segment_features(speaking))
        assert verdict is None or "greeting" not in verdict.reason, text  # a barge-in is the head's to judge
    for text in ("Hey Mike, how's it going?", "Hi John.", "Hello everyone.", "Hello, is anyone home?",
                 "Hey assistant, what's the temperature outside?"):
        verdict = hard_rule(evidence(text), segment_features(evidence(text)))
        assert verdict is None or "greeting" not in verdict.reason, text


def test_the_shipped_head_was_trained_on_the_sessions_cut():
    """The head sees segments cut ``speculate_after_s`` into a pause; a new value wants it retrained."""
    from duplex.options import DuplexOptions

    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    assert data.get("speculate_after_s") == DuplexOptions().speculate_after_s, \
        "retrain: `assistant train-state` (it cuts its segments where the session decides)"


def test_training_cuts_a_clip_where_the_session_decides():
    from duplex.state.hearing import live_cut

    frame = 0.032
    speech = [0.0] * 20 + [0.9] * 30 + [0.0] * 10  # onset confirmed at frame 22 (the third voiced frame)
    start, end = live_cut(np.array(speech), frame, 0.064)
    assert start == 23 - 9  # the 0.3 s pre-roll holds nine 32 ms frames, the onset frame among them
    assert end == 52  # two silent frames (64 ms) into the pause: frames 50 and 51
    assert live_cut(np.array(speech), frame, 0.128)[1] == 54
    # a pause shorter than the end of a turn, then more speech: the cut follows the last pause
    resumed = [0.0] * 20 + [0.9] * 20 + [0.0] * 3 + [0.9] * 10 + [0.0] * 10
    assert live_cut(np.array(resumed), frame, 0.064)[1] == 55
    # speech to the clip's end: all of it
    assert live_cut(np.array([0.0] * 5 + [0.9] * 20), frame, 0.064) == (0, 25)
    assert live_cut(np.array([0.2] * 40), frame, 0.064) is None  # never a segment


def test_learned_decider_on_hand_made_segments():
    decider = LearnedStateDecider()
    query = decider.decide(evidence("What time is it in Tokyo?"))
    assert query.token == StateToken.QUERY, query
    assert 0.5 <= query.query_probability <= 1.0 and query.reason
    assert decider.decide(evidence("Set a timer for ten minutes.")).token == StateToken.QUERY
    assert decider.decide(evidence("Uh-huh.")).token == StateToken.IGNORE
    noise = decider.decide(evidence("you", speech=0.0, no_speech=0.9, logprob=-1.5))
    assert noise.token == StateToken.IGNORE and noise.query_probability == 0.0
    said = "Your next appointment is on Thursday at ten. It is with doctor Green."
    echo = decider.decide(evidence("it is with doctor green", speaking=True, assistant_text=said))
    assert echo.token == StateToken.IGNORE and "echo" in echo.reason
    # rules-only baseline agrees on the clear cases
    rules = RuleStateDecider()
    assert rules.decide(evidence("What time is it in Tokyo?")).token == StateToken.QUERY
    assert rules.decide(evidence("Uh-huh.")).token == StateToken.IGNORE


class CountingEmbedder:
    """A stand-in for the LLM embedding: a fixed vector, and a count of the (expensive) calls."""

    name = "counting-fake"
    dimension = 4

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return np.zeros(self.dimension, dtype=np.float32)


def model_with_fake_embedding(tmp_path, sure: dict | None):
    """The shipped weights plus an embedding head for ``CountingEmbedder`` that only echoes the features
    (zero weights on the embedding), and the given ``features_sure`` bounds."""
    data = json.loads(DEFAULT_MODEL_PATH.read_text())
    head = dict(data["variants"]["features"]["head"])
    head["mean"] = list(head["mean"]) + [0.0] * CountingEmbedder.dimension
    head["std"] = list(head["std"]) + [1.0] * CountingEmbedder.dimension
    head["weights"] = list(head["weights"]) + [0.0] * CountingEmbedder.dimension
    variant = {**data["variants"]["features"], "head": head, "embedder": CountingEmbedder.name}
    if sure is not None:
        variant["features_sure"] = sure
    data["variants"]["features+embedding"] = variant
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    return path


def test_the_embedding_is_skipped_where_the_features_head_is_sure(tmp_path):
    question = evidence("What time is it in Tokyo?")
    p_features = LearnedStateDecider().decide(question).query_probability  # the features-only head's P
    assert p_features > 0.5
    embedder = CountingEmbedder()
    sure = {"query": p_features - 0.01, "ignore": 0.01}
    decider = LearnedStateDecider(embedder, model_path=model_with_fake_embedding(tmp_path, sure))
    assert decider.variant == "features+embedding"
    clear = decider.decide(question)
    assert clear.token == StateToken.QUERY and clear.query_probability == pytest.approx(p_features), clear
    assert "sure without the embedding" in clear.reason and embedder.calls == []
    # a rule's query ("Stop.") needs no head at all
    assert decider.decide(evidence("Stop.")).token == StateToken.QUERY and embedder.calls == []
    # in between the bounds, the full head runs (its embedding weights are zero here, so the same P)
    middle = LearnedStateDecider(embedder,
                                 model_path=model_with_fake_embedding(tmp_path, {"query": 1.01, "ignore": -0.01}))
    again = middle.decide(question)
    assert embedder.calls == ["What time is it in Tokyo?"] and "sure" not in again.reason
    assert again.query_probability == pytest.approx(clear.query_probability)
    # weights without bounds (an older model file): always the full head
    older = LearnedStateDecider(embedder, model_path=model_with_fake_embedding(tmp_path, None))
    older.decide(evidence("What time is it in Tokyo?"))
    assert len(embedder.calls) == 2


def test_segments_that_sound_like_the_assistant_need_more_certainty_to_interrupt():
    from dataclasses import replace

    lenient = LearnedStateDecider(speaking_threshold=0.0, echo_like_threshold=1.01)
    strict = LearnedStateDecider(speaking_threshold=0.0)  # default bar for echo-like audio: 0.9
    clean = evidence("One hundred feet.", speaking=True, assistant_text="The moon is far away.")
    echo_like = replace(clean, echo_share=0.42)
    probability = strict.decide(clean).query_probability
    assert strict.decide(clean).token == StateToken.QUERY  # no echo: the (zero) speaking bar applies
    assert lenient.decide(echo_like).token == StateToken.IGNORE  # a bar above 1 refuses everything echo-like
    verdict = strict.decide(echo_like)
    assert verdict.token == (StateToken.QUERY if probability >= 0.9 else StateToken.IGNORE)
    assert "like the assistant's own voice" in verdict.reason
    assert strict.decide(replace(clean, echo_share=0.2)).token == StateToken.QUERY  # under the share: usual bar


def test_segments_mostly_in_the_assistants_own_voice_never_interrupt():
    """A fragment of the assistant's answer heard back ("in the 100th", 51 % echo-like in a CI run, P=1.00)."""
    from dataclasses import replace

    decider = LearnedStateDecider(speaking_threshold=0.0, echo_like_threshold=0.0)
    heard_back = evidence("What time is it in Tokyo?", speaking=True, assistant_text="The moon is far away.")
    assert decider.decide(replace(heard_back, echo_share=0.44)).token == StateToken.QUERY
    verdict = decider.decide(replace(heard_back, echo_share=0.51))
    assert verdict.token == StateToken.IGNORE and "own voice" in verdict.reason
    idle = replace(heard_back, echo_share=0.51, assistant_speaking=False)  # nothing playing: no echo to fear
    assert decider.decide(idle).token == StateToken.QUERY


def test_an_unknown_embedder_falls_back_to_features():
    class OtherEmbedder:
        name = "some-other-model"

        def embed(self, text: str) -> np.ndarray:
            raise AssertionError("a non-matching embedder must not be called")

    with pytest.warns(UserWarning, match="features only"):
        decider = LearnedStateDecider(embedder=OtherEmbedder())
    assert decider.variant == "features"
    assert decider.decide(evidence("What time is it in Tokyo?")).token == StateToken.QUERY


def test_works_without_vad_probabilities():
    e = evidence("What time is it in Tokyo?")
    e = SegmentEvidence(e.audio_16k, e.transcript, np.zeros(0, np.float32), False)
    assert LearnedStateDecider().decide(e).token == StateToken.QUERY
    noisy = evidence("you", no_speech=0.9, logprob=-1.5)
    noisy = SegmentEvidence(noisy.audio_16k, noisy.transcript, np.zeros(0, np.float32), False)
    assert LearnedStateDecider().decide(noisy).token == StateToken.IGNORE


# --- training -----------------------------------------------------------------------------------------------

class TextLengthEmbedder:
    """A stand-in for the LLM embedding, cheap and deterministic: two numbers from the text."""

    name = "text-length-fake"

    def embed(self, text: str) -> np.ndarray:
        return np.array([len(text) / 10.0, text.count(" ")], dtype=np.float32)


TINY_QUERIES = ("What time is it in Tokyo?", "How far is the moon?", "Who wrote Hamlet?",
                "Set a timer for ten minutes.", "Play some jazz music.", "Why is the sky blue?",
                "Turn off the kitchen lights.")
TINY_OTHERS = ("I'll be home by six.", "The meeting went well today.", "My sister is coming on Saturday.",
               "Honey, did you feed the cat?", "The train was late this morning.", "We ran out of toothpaste again.",
               "Kids, brush your teeth.")


def tiny_heard_dataset():
    """Each line spoken by two voices and 'heard' without any model: the transcript is the line."""
    from duplex.state.dataset import AudioSpec, HeardDataset, Item
    from duplex.state.hearing import Heard

    items, whole, live = [], {}, {}
    lines = [(text, 1, "query") for text in TINY_QUERIES] + [(text, 0, "declarative") for text in TINY_OTHERS]
    for n, (text, label, category) in enumerate(lines):
        for voice in ("piper:joe", "espeak:en-us"):
            item = Item(AudioSpec("tts", text, voice), label, category, text)
            items.append(item)
            for view, seconds in ((live, 1.2 + 0.05 * n), (whole, 1.6 + 0.05 * n)):
                probabilities = np.full(int(seconds / 0.032), 0.9, np.float32)
                view[item.audio.key] = Heard(transcript(text, seconds=seconds), probabilities, seconds, 200.0, 10.0)
    embedder = TextLengthEmbedder()
    return HeardDataset(items, whole, live, "fake-asr", 0.064, {text: embedder.embed(text) for text, _, _ in lines},
                        embedder.name)


def test_the_training_command_writes_weights_that_the_decider_loads(tmp_path):
    from duplex.state import train
    from duplex.state.hearing import DATASET_FILE, save_cache

    save_cache(tmp_path / DATASET_FILE, tiny_heard_dataset())
    out = tmp_path / "model.json"
    assert train.main(["--cache", str(tmp_path), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["feature_names"] == list(FEATURE_NAMES) and data["speculate_after_s"] == 0.064
    assert data["trained_on"].startswith("28 segments") and "held_out" not in data
    assert data["variants"]["features+embedding"]["embedder"] == TextLengthEmbedder.name
    for decider in (LearnedStateDecider(model_path=out), LearnedStateDecider(TextLengthEmbedder(), model_path=out)):
        assert decider.variant in ("features", "features+embedding")
        assert 0 < decider.threshold <= decider.speaking_threshold < 1
        assert decider.decide(evidence("What time is it in Tokyo?")).token == StateToken.QUERY, decider.variant
        assert decider.decide(evidence("The meeting went well today.")).token == StateToken.IGNORE, decider.variant
    assert LearnedStateDecider(TextLengthEmbedder(), model_path=out).variant == "features+embedding"

    held = tmp_path / "held.json"
    train.main(["--cache", str(tmp_path), "--out", str(held), "--hold-out-voice", "espeak:en-us", "--no-embedding"])
    data = json.loads(held.read_text())
    assert data["trained_on"].startswith("14 segments") and data["held_out"]["voices"] == ["espeak:en-us"]
    assert list(data["variants"]) == ["features"]
    assert LearnedStateDecider(model_path=held).decide(evidence("Who wrote Hamlet?")).token == StateToken.QUERY


def test_the_training_command_needs_heard_segments(tmp_path, capsys):
    from duplex.state import train

    with pytest.raises(SystemExit):
        train.main(["--cache", str(tmp_path)])
    assert "assistant train-state" in capsys.readouterr().err


def test_assistant_train_state_help(capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train-state", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--hold-out-voice" in help_text and "--data" in help_text and "--out" in help_text


# --- real models ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedder():
    try:
        from assistant.llm.embedding import LlamaCppEmbedder

        return LlamaCppEmbedder(threads=1)
    except (ImportError, FileNotFoundError) as error:
        pytest.skip(f"no LLM embedder: {error}")


@pytest.fixture(scope="module")
def silero():
    from audio.vad import SileroVad

    return SileroVad()


@pytest.fixture(scope="module")
def real_segments(data_dir, recognizer, user_voice, silero):
    """A clear query and a backchannel spoken by the bundled TTS, and a cut of real noise, through real ASR + VAD."""
    from assistant.recordings import load_manifest
    from audio.frames import AudioFrame
    from audio.vad import frame_probabilities
    from audio.wavfile import read_audio

    def heard(audio: np.ndarray) -> SegmentEvidence:
        return SegmentEvidence(audio, recognizer.transcribe(audio), frame_probabilities(silero, audio), False)

    def spoken(text: str) -> np.ndarray:
        frame = AudioFrame.concatenate(list(user_voice.synthesize(text)))
        audio = frame.convert(sample_rate=16000, channels=1, dtype=np.float32).mono_float32()
        pad = np.zeros(3200, np.float32)
        return np.concatenate([pad, audio, pad])

    dishes = next(r for r in load_manifest(data_dir) if r.path.name == "doing_the_dishes.wav")
    noise = read_audio(dishes.path).convert(sample_rate=16000, channels=1, dtype=np.float32).mono_float32()
    noise = noise[10 * 16000:13 * 16000]
    noise = noise * (10 ** (-30 / 20) / (np.sqrt(np.mean(noise ** 2)) + 1e-9))  # a quiet recording: bring to -30 dBFS
    return {"query": heard(spoken("What time is it in Tokyo?")), "backchannel": heard(spoken("uh-huh")),
            "noise": heard(noise.astype(np.float32))}


@pytest.mark.slow
def test_real_audio_features_only(real_segments):
    decider = LearnedStateDecider()
    decisions = {name: decider.decide(e) for name, e in real_segments.items()}
    assert decisions["query"].token == StateToken.QUERY, (real_segments["query"].transcript.text, decisions["query"])
    assert decisions["backchannel"].token == StateToken.IGNORE, (real_segments["backchannel"].transcript.text,
                                                               decisions["backchannel"])
    assert decisions["noise"].token == StateToken.IGNORE, (real_segments["noise"].transcript.text, decisions["noise"])


@pytest.mark.slow
def test_real_audio_with_the_llm_embedding(real_segments, embedder):
    decider = LearnedStateDecider(embedder=embedder)
    if decider.variant != "features+embedding":
        pytest.skip("duplex/state/state_model.json has no head for this embedder; rerun `assistant train-state`")
    for name, expected in (("query", StateToken.QUERY), ("backchannel", StateToken.IGNORE),
                           ("noise", StateToken.IGNORE)):
        decision = decider.decide(real_segments[name])
        assert decision.token == expected, (name, real_segments[name].transcript.text, decision)
    vector = embedder.embed("What time is it in Tokyo?")
    assert vector.shape == (embedder.dimension,) and np.all(np.isfinite(vector))
    assert np.allclose(vector, embedder.embed("What time is it in Tokyo?"))
