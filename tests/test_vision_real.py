"""The camera with the real parts: RapidOCR reads a rendered label, OpenCV's cascade finds a drawn face, a
tiny random VLM built here loads and generates through transformers, and the real session answers a spoken
"What does the label say?" from what the camera shows, without slowing the audio path."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from audio.frames import AudioFrame
from audio.vad import SileroVad
from duplex.bus import EventLog
from duplex.models import GenerationOptions, WorkerModels
from duplex.options import DuplexOptions
from duplex.session import DuplexSession
from duplex.timeline import Timeline, run_timeline

LABEL = ("BANANA", "BREAD")


def label_image(lines=LABEL, size=(640, 480)) -> np.ndarray:
    """A cream label with dark capitals, one word a line (Pillow's bundled font: no system fonts needed)."""
    image = Image.new("RGB", size, (245, 235, 200))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=72)
    for row, text in enumerate(lines):
        width = draw.textlength(text, font=font)
        draw.text(((size[0] - width) / 2, 120 + 120 * row), text, fill=(25, 20, 15), font=font)
    return np.asarray(image)


def face_image(size: int = 300) -> np.ndarray:
    """A drawn face (skin oval, hair, eyes with brows, nose, mouth): enough for a Haar cascade."""
    image = Image.new("RGB", (400, 400), (90, 110, 140))
    draw = ImageDraw.Draw(image)
    draw.ellipse([100, 60, 300, 340], fill=(225, 190, 160))
    draw.chord([95, 40, 305, 200], 180, 360, fill=(60, 40, 20))
    for x in (150, 250):
        draw.ellipse([x - 22, 160, x + 22, 185], fill=(250, 250, 250))
        draw.ellipse([x - 10, 162, x + 10, 183], fill=(40, 30, 20))
        draw.line([x - 28, 145, x + 28, 140], fill=(60, 40, 20), width=8)
    draw.polygon([(200, 190), (185, 245), (215, 245)], fill=(200, 160, 130))
    draw.chord([160, 255, 240, 295], 0, 180, fill=(160, 60, 60))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(2)).resize((size, size)))


@pytest.fixture(scope="module")
def experts():
    from assistant.vision.experts import ExpertDescriber

    return ExpertDescriber()


@pytest.fixture(scope="module")
def camera_describer():
    """What the assistant wires by default: the experts in a child process at idle CPU priority."""
    from assistant.backends import load_describer
    from assistant.config import VisionConfig

    describer = load_describer(VisionConfig())
    yield describer
    describer.close()


# --- the CPU experts -------------------------------------------------------------------------------

def test_ocr_reads_a_rendered_label(experts):
    assert experts.read_text(label_image()) == list(LABEL)
    assert experts.read_text(label_image(("OAT", "MILK", "750ML"))) == ["OAT", "MILK", "750ML"]
    assert experts.read_text(np.full((480, 640, 3), 128, np.uint8)) == []
    description = experts.describe(label_image())
    assert '"BANANA BREAD"' in description and "No face" in description


def test_face_cascade_light_and_colours(experts):
    assert experts.count_faces(face_image()) == 1
    assert experts.count_faces(label_image()) == 0
    assert "One person's face" in experts.describe(face_image())
    dark_red = np.zeros((120, 160, 3), np.uint8)
    dark_red[..., 0] = 60
    assert "A dark view" in experts.describe(dark_red)
    red = np.zeros((120, 160, 3), np.uint8)
    red[..., 0] = 230
    assert "mostly red" in experts.describe(red)
    assert "A bright view" in experts.describe(np.full((60, 80, 3), 250, np.uint8))


# --- a vision-language model through transformers --------------------------------------------------

def build_tiny_llava(folder) -> None:
    """A LLaVA with random weights, a word-level tokenizer and a CLIP image processor, all made here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    words = ["<unk>", "<pad>", "<s>", "</s>", "<image>"] + (
        "<|user|> <|assistant|> describe what the camera shows in one short sentence . read out any visible text "
        "exactly a label red green blue bread banana page hand").split()
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                        bos_token="<s>", eos_token="</s>",
                                        extra_special_tokens={"image_token": "<image>"})
    template = ("{% for m in messages %}<|{{ m['role'] }}|> {% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=template)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=32, patch_size=8, projection_dim=16),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                bos_token_id=2, eos_token_id=3, pad_token_id=1),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def test_a_tiny_random_vlm_loads_and_the_pixels_reach_it(tmp_path):
    import torch

    from assistant.backends import load_describer
    from assistant.config import VisionConfig

    build_tiny_llava(tmp_path)
    describer = load_describer(VisionConfig(backend=f"transformers:{tmp_path}", max_new_tokens=6))
    assert describer.name == f"transformers:{tmp_path.name}"
    assert describer.device == ("cuda" if torch.cuda.is_available() else "cpu")
    text = describer.describe(label_image())
    assert isinstance(text, str) and 0 < len(text.split()) <= 6  # random weights: some words of the vocabulary
    # The image itself goes into the model: two different frames give different next-token scores.
    scores = []
    for frame in (np.zeros((48, 64, 3), np.uint8), label_image()):
        inputs = describer.processor(images=[Image.fromarray(frame)], text=describer._prompt_text(),
                                     return_tensors="pt")
        assert "pixel_values" in inputs
        assert (inputs["input_ids"] == describer.model.config.image_token_index).sum() == 16
        with torch.inference_mode():
            scores.append(describer.model(**{k: v.to(describer.device) for k, v in inputs.items()}).logits[0, -1].cpu())
    assert not torch.allclose(scores[0], scores[1])


# --- the real session ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def decider():
    from assistant.config import AssistantConfig
    from assistant.session import make_state_decider

    return make_state_decider(AssistantConfig())


def speech(synthesizer, text: str) -> AudioFrame:
    return AudioFrame.concatenate(list(synthesizer.synthesize(text))).convert(sample_rate=16000)


async def play_until_turn_ended(session, log, limit_s: float = 90.0) -> None:
    """Go on pulling the assistant's voice (a loudspeaker) until its answer has played: on a loaded 2-core
    machine the models may need far longer than the scripted timeline."""
    block = session.output.sample_rate // 50
    for _ in range(int(limit_s * 50)):
        if log.of_kind("TurnEnded"):
            return
        session.output.read(block)
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_the_assistant_reads_the_label_it_is_shown(stack, decider, camera_describer, user_voice):
    log = EventLog()
    session = DuplexSession(WorkerModels(stack.recognizer, stack.language_model, stack.synthesizer), decider,
                            SileroVad, DuplexOptions(output_sample_rate=24000),
                            system_prompt="You are a helpful voice assistant. Answer in one short sentence.",
                            generation=GenerationOptions(max_tokens=40), event_log=log, vision=camera_describer)
    question = speech(user_voice, "What does the label say?")
    timeline = Timeline(1.0).add_audio(1.0, question, "question")
    label = label_image()
    for k in range(12):  # the user holds the label up from 0.3 s, a 5 fps camera
        timeline.add_image(0.3 + k * 0.2, label)
    async with session:
        await run_timeline(session, timeline, tail_s=4.0)
        await play_until_turn_ended(session, log)
    for record in log.records:
        if record["kind"] in ("VisionFrame", "VisionDescribed", "SpeechStarted", "StateDecided", "TurnEnded"):
            print(record)
    described = log.of_kind("VisionDescribed")
    assert described and '"BANANA BREAD"' in described[0]["text"]
    assert 'BANANA BREAD' in session.history[0].visual_context
    ended = log.of_kind("TurnEnded")
    print("answer:", ended[0]["answer"] if ended else None)
    assert ended and "banana bread" in ended[0]["answer"].lower()


@pytest.mark.slow
async def test_the_camera_does_not_slow_the_audio_path(stack, decider, camera_describer, user_voice):
    """Speech onsets noticed with a 20 fps camera whose every frame is analysed (the describer never idle)
    against no camera: fresh sessions, alternated, one utterance each so that a slow transcription on a
    loaded machine cannot merge utterances. The precise figures: benchmarks/vision_latency.py."""
    from benchmarks.vision_latency import compare, summary

    runs = await compare(WorkerModels(stack.recognizer, stack.language_model, stack.synthesizer), decider,
                         lambda text: speech(user_voice, text), camera_describer,
                         [label_image(), face_image(480)], rounds=3, fps=20.0, stress=True,
                         utterances=("Could you look at this for me?",), tail_s=1.5)  # onsets only
    figures = summary(runs)
    print(figures)
    off, on = figures["off"], figures["on"]
    assert off["utterances"] == on["utterances"] == 3  # every onset noticed, camera or not
    assert on["frames_described"] >= 3 and off["frames_taken"] == 0  # the camera really ran, and only there
    # Within 10 %, plus one 32 ms VAD frame: onsets are noticed on frame boundaries, and the other processes
    # of a shared 2-core machine add noise of that size to a handful of runs.
    assert on["onset_median_ms"] <= 1.10 * off["onset_median_ms"] + 32
