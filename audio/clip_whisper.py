"""Whisper with its encoder cut to the clip: the bundled tiny.en, 2-3x faster on short utterances.

Whisper always encodes a 30 s window; for a 2 s question that padding is most of the ASR's cost (~0.4 of
~0.5 s on the 2-core VM), and CTranslate2 refuses any other window. This backend loads the same weights
from a CTranslate2 whisper folder into the reference ``whisper`` package's PyTorch modules and encodes only
the clip plus a little silence (``pad_s``), slicing the encoder's sinusoidal positions to match: the trick
whisper.cpp exposes as ``audio_ctx``.

A shorter window costs the model some of its sense of where the speech ends: it may say the words again
("will we ever forget it, will we ever forget it") or finish an unfinished sentence ("cats and" heard as
"cats and cats."). Three guards: decoding stops at a repeated run of tokens and at a token budget
proportional to the clip's length; then the tokens are aligned to the audio the way whisper times words
(its alignment heads' cross-attention and dynamic time warping) over the encoded window, padding included,
and a word that starts past the end of the clip, in the silence, was not heard: it and what follows go.
Measured figures (word error rates, speed) are in docs/benchmarks.md.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np

from audio.asr import ASR_SAMPLE_RATE, Transcript, TranscriptSegment, _check_audio

WINDOW_S = 30.0
_HOP = 160  # samples per mel frame
_ENCODER_FRAME_S = 0.02  # one encoder position: two mel frames
BEYOND_CLIP_S = 0.1  # a word aligned to start this far past the clip's end was not heard
_SDPA_SWITCH = threading.Lock()
_SIZES = {(384, 4): "tiny", (512, 6): "base", (768, 12): "small", (1024, 24): "medium", (1280, 32): "large"}
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2_weights(model_bin: str | Path) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` (binary format 6: the one ctranslate2 4.x writes).

    Aliases (a variable stored once under two names) are resolved. Quantised (int8) models are refused:
    their scales would need the matching dequantisation.
    """
    data = Path(model_bin).read_bytes()
    position = 0

    def take(fmt: str) -> tuple:
        nonlocal position
        values = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal position
        (length,) = take("H")  # includes the trailing NUL
        text = data[position:position + length - 1].decode("utf-8")
        position += length
        return text

    (version,) = take("I")
    if version != 6:
        raise ValueError(f"{model_bin}: CTranslate2 binary version {version}, this reader knows version 6")
    spec = string()
    take("I")  # spec revision
    if spec != "WhisperSpec":
        raise ValueError(f"{model_bin} holds a {spec}, not a whisper model")
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (dtype_id,) = take("B")
        (size,) = take("I")
        dtype = _CT2_DTYPES.get(dtype_id)
        if dtype is None:
            raise ValueError(f"{model_bin}: variable {name} has an unsupported type id {dtype_id}")
        variables[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                        offset=position).reshape(shape)
        position += size
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if any(name.endswith("weight_scale") for name in variables):
        raise ValueError(f"{model_bin} is quantised (int8); convert the model with float16 or float32 weights")
    return variables


def whisper_from_ctranslate2(folder: str | Path):
    """A ``whisper.model.Whisper`` (float32, eval mode) holding the weights of a CTranslate2 whisper folder."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    weights = read_ctranslate2_weights(Path(folder) / "model.bin")
    layers = sum(1 for name in weights if name.startswith("encoder/layer_") and name.endswith("ffn/linear_0/bias"))
    state = weights["encoder/conv1/weight"].shape[0]
    dims = ModelDimensions(
        n_mels=weights["encoder/conv1/weight"].shape[1], n_audio_ctx=weights["encoder/position_encodings/encodings"]
        .shape[0], n_audio_state=state, n_audio_head=int(weights["encoder/num_heads"]), n_audio_layer=layers,
        n_vocab=weights["decoder/embeddings/weight"].shape[0],
        n_text_ctx=weights["decoder/position_encodings/encodings"].shape[0], n_text_state=state,
        n_text_head=int(weights["decoder/num_heads"]), n_text_layer=layers)

    def tensor(name: str):
        return torch.from_numpy(weights[name].astype(np.float32))

    converted = {}

    def copy(destination: str, source: str, parameters=("weight", "bias")) -> None:
        for parameter in parameters:
            key = {"weight": "gamma", "bias": "beta"}[parameter] if source.endswith("layer_norm") else parameter
            converted[f"{destination}.{parameter}"] = tensor(f"{source}/{key}")

    def attention(destination: str, source: str, cross: bool) -> None:
        # CTranslate2 fuses the projections: self-attention q|k|v in linear_0; cross-attention q in linear_0
        # and k|v in linear_1. Whisper's key projection has no bias (CTranslate2 stores zeros for it).
        if cross:
            converted[f"{destination}.query.weight"] = tensor(f"{source}/linear_0/weight")
            converted[f"{destination}.query.bias"] = tensor(f"{source}/linear_0/bias")
            key_value_w, key_value_b = tensor(f"{source}/linear_1/weight"), tensor(f"{source}/linear_1/bias")
            (key_w, value_w), (_, value_b) = key_value_w.split(state), key_value_b.split(state)
            out = "linear_2"
        else:
            qkv_w, qkv_b = tensor(f"{source}/linear_0/weight"), tensor(f"{source}/linear_0/bias")
            (query_w, key_w, value_w), (query_b, _, value_b) = qkv_w.split(state), qkv_b.split(state)
            converted[f"{destination}.query.weight"], converted[f"{destination}.query.bias"] = query_w, query_b
            out = "linear_1"
        converted[f"{destination}.key.weight"] = key_w
        converted[f"{destination}.value.weight"], converted[f"{destination}.value.bias"] = value_w, value_b
        converted[f"{destination}.out.weight"] = tensor(f"{source}/{out}/weight")
        converted[f"{destination}.out.bias"] = tensor(f"{source}/{out}/bias")

    for conv in ("conv1", "conv2"):
        copy(f"encoder.{conv}", f"encoder/{conv}")
    converted["encoder.positional_embedding"] = tensor("encoder/position_encodings/encodings")
    copy("encoder.ln_post", "encoder/layer_norm")
    for i in range(layers):
        for side in ("encoder", "decoder"):
            block, layer = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            attention(f"{block}.attn", f"{layer}/self_attention", cross=False)
            copy(f"{block}.attn_ln", f"{layer}/self_attention/layer_norm")
            copy(f"{block}.mlp.0", f"{layer}/ffn/linear_0")
            copy(f"{block}.mlp.2", f"{layer}/ffn/linear_1")
            copy(f"{block}.mlp_ln", f"{layer}/ffn/layer_norm")
            if side == "decoder":
                attention(f"{block}.cross_attn", f"{layer}/attention", cross=True)
                copy(f"{block}.cross_attn_ln", f"{layer}/attention/layer_norm")
    converted["decoder.token_embedding.weight"] = tensor("decoder/embeddings/weight")
    converted["decoder.positional_embedding"] = tensor("decoder/position_encodings/encodings")
    copy("decoder.ln", "decoder/layer_norm")
    model = Whisper(dims)
    model.load_state_dict(converted, strict=False)  # not strict: the attention masks are buffers built here
    missing = [name for name in model.state_dict() if name not in converted and not name.endswith("mask")]
    if missing:
        raise ValueError(f"{folder}: no weights for {missing[:5]}")
    return model.eval()


def alignment_heads(model) -> list[tuple[int, int]]:
    """(layer, head) pairs of the decoder's cross-attention that follow the audio: whisper's published
    choice for a known model size, else (as whisper does) every head of the upper half of the layers."""
    import whisper

    dims = model.dims
    name = _SIZES.get((dims.n_text_state, dims.n_text_layer))
    if name == "large":
        name = "large-v3" if dims.n_mels == 128 else "large-v2"
    elif name and dims.n_vocab < 51865:  # English-only vocabulary
        name += ".en"
    dump = whisper._ALIGNMENT_HEADS.get(name) if name else None
    if dump is not None:
        model.set_alignment_heads(dump)
    mask = model.alignment_heads.to_dense()
    return [(int(layer), int(head)) for layer, head in mask.nonzero()]


def _dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment of rows (tokens) to columns (frames) from (0, 0) to the last corner, minimising
    the summed cost; returns (row, column) index arrays along the path, in order. The table is filled one
    anti-diagonal at a time (each cell needs only the two diagonals before it), so numpy does the inner loop.
    Same path as ``whisper.timing.dtw``, whose numba kernel takes ~2 s to compile on its first call here."""
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    total[0, 0] = 0.0
    step = np.zeros((rows + 1, columns + 1), np.int8)  # 0 diagonal, 1 from above, 2 from the left
    for diagonal in range(2, rows + columns + 1):
        i = np.arange(max(1, diagonal - columns), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        options = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])
        choice = options.argmin(0)
        total[i, j] = cost[i - 1, j - 1] + options[choice, np.arange(len(i))]
        step[i, j] = choice
    i, j, path = rows, columns, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        choice = step[i, j]
        i, j = (i - 1, j - 1) if choice == 0 else ((i - 1, j) if choice == 1 else (i, j - 1))
    path.reverse()
    return np.array([p[0] for p in path]), np.array([p[1] for p in path])


def repeated_tail(tokens: list[int], shortest: int = 2) -> int:
    """Length of the run at the end of ``tokens`` that repeats the run just before it (a decoding loop), or 0.

    Two tokens is the shortest run: a one-word clip comes back as "Wait. Wait." ([" Wait", "."] twice). A
    user's own "wait, wait" loses its echo, which changes nothing the assistant does with it."""
    for length in range(shortest, len(tokens) // 2 + 1):
        run = tokens[-length:]
        if run == tokens[-2 * length:-length] and len(set(run)) > 1:  # "very very very" is not a loop
            return length
    return 0


class ClipWhisperRecognizer:
    """Whisper from a CTranslate2 folder (default: the bundled tiny.en), encoder window cut to the clip.

    ``pad_s``: silence encoded after the clip (the model needs to see that the speech has ended);
    ``tokens_per_s``: the decoding budget per second of audio, on top of a few tokens for short clips.
    """

    def __init__(self, model: str | Path, device: str, language: str | None = "en",
                 pad_s: float = 4.0, tokens_per_s: float = 6.0, threads: int | None = None) -> None:
        """``device``: ``cpu``, ``cuda`` or ``cuda:N``."""
        import torch
        from whisper.tokenizer import get_tokenizer

        if not (Path(model) / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 whisper model (model.bin) in {model}")
        if threads:
            torch.set_num_threads(threads)
        self.device = device
        self.name = f"clip-whisper:{Path(str(model)).name}"
        self.pad_s = pad_s
        self.tokens_per_s = tokens_per_s
        self._model = whisper_from_ctranslate2(model).to(device)
        multilingual = self._model.dims.n_vocab >= 51865
        self.language = language if multilingual else "en"
        self._tokenizer = get_tokenizer(multilingual, num_languages=self._model.num_languages,
                                        language=self.language if multilingual else None, task="transcribe")
        tokenizer = self._tokenizer
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        specials = {tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev,
                    tokenizer.sot_lm, tokenizer.no_speech}
        self._suppress = sorted({*tokenizer.non_speech_tokens, *specials} - {None})
        self._suppress_at_start = [*tokenizer.encode(" "), tokenizer.eot]
        self._heads = alignment_heads(self._model)
        self._head_layers = sorted({layer for layer, _ in self._heads})
        self._wordless: dict[int, bool] = {}  # token -> carries no letter or digit (punctuation)
        self._lock = threading.Lock()  # the decoder's key/value cache hooks sit on the shared modules

    def transcribe(self, audio_16k: np.ndarray) -> Transcript:
        from whisper.utils import compression_ratio

        audio = _check_audio(audio_16k)
        if audio.size == 0:
            return Transcript("", self.language or "en", (), 0.0)
        window = int(WINDOW_S * ASR_SAMPLE_RATE)
        segments = []
        with self._lock:
            for start in range(0, len(audio), window):
                piece = audio[start:start + window]
                text, no_speech, avg_logprob = self._transcribe_window(piece)
                begin = start / ASR_SAMPLE_RATE
                segments.append(TranscriptSegment(begin, begin + len(piece) / ASR_SAMPLE_RATE, text, avg_logprob,
                                                  no_speech, compression_ratio(text)))
        return Transcript(" ".join(s.text for s in segments if s.text).strip(), self.language or "en", tuple(segments),
                          len(audio) / ASR_SAMPLE_RATE)

    def _transcribe_window(self, audio: np.ndarray) -> tuple[str, float, float]:
        import torch
        import whisper

        samples = min(int((len(audio) / ASR_SAMPLE_RATE + self.pad_s) * ASR_SAMPLE_RATE),
                      int(WINDOW_S * ASR_SAMPLE_RATE))
        samples += (-samples) % (2 * _HOP)  # the encoder's stride-2 convolution wants an even frame count
        padded = np.zeros(samples, np.float32)
        padded[:len(audio)] = audio
        with torch.inference_mode():
            # log_mel_spectrogram scales by the clip's loudest frame; zero padding cannot change that, so the
            # features match the first frames of whisper's own 30 s window.
            mel = whisper.log_mel_spectrogram(torch.from_numpy(padded), self._model.dims.n_mels)
            mel = mel[:, :samples // _HOP].unsqueeze(0).to(self.device)
            features = self._encode(mel)
            return self._decode(features, budget=int(8 + self.tokens_per_s * len(audio) / ASR_SAMPLE_RATE),
                                clip_s=len(audio) / ASR_SAMPLE_RATE)

    def _encode(self, mel):
        import torch.nn.functional as F

        encoder = self._model.encoder
        x = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel)))).permute(0, 2, 1)
        x = x + encoder.positional_embedding[:x.shape[1]]
        for block in encoder.blocks:
            x = block(x)
        return encoder.ln_post(x)

    def _decode(self, features, budget: int, clip_s: float) -> tuple[str, float, float]:
        """Greedy decoding with whisper's token suppression, then the words aligned past the clip's end are
        dropped; returns text, no-speech probability and the average log-probability (summed over the
        tokens and end-of-text, divided by their count)."""
        cache, hooks = self._model.install_kv_cache_hooks()
        try:
            tokens, no_speech, avg_logprob = self._greedy(features, budget, cache)
        finally:
            for hook in hooks:
                hook.remove()
        if tokens:
            tokens = tokens[:self._heard_length(features, tokens, clip_s)]
        return self._tokenizer.decode(tokens).strip(), no_speech, avg_logprob

    def _heard_length(self, features, tokens: list[int], clip_s: float) -> int:
        """How many of ``tokens`` lie in the clip: the rest were aligned to the silence after it.

        Whisper's own word-timing method (its alignment heads' cross-attention, normalised per frame,
        median-filtered, then dynamic time warping from the first token to the end-of-text), run over the
        encoded window including the padding, so a word the model added from nowhere can land past the end.
        """
        import torch
        from whisper.model import disable_sdpa
        from whisper.timing import median_filter

        scores: dict[int, torch.Tensor] = {}

        def keep(layer):
            def hook(_module, _inputs, outputs):
                scores[layer] = outputs[1]
            return hook

        blocks = self._model.decoder.blocks
        hooks = [blocks[layer].cross_attn.register_forward_hook(keep(layer)) for layer in self._head_layers]
        sequence = [*self._prompt, *tokens, self._tokenizer.eot]
        try:
            # attention scores are returned only without SDPA, a switch on whisper's class: one pass at a
            # time process-wide, so another recognizer cannot turn it back on midway
            with _SDPA_SWITCH, disable_sdpa():
                self._hidden(sequence, features, through_layer=self._head_layers[-1])
        finally:
            for hook in hooks:
                hook.remove()
        weights = torch.stack([scores[layer][0, head] for layer, head in self._heads]).float().softmax(-1)
        std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
        weights = median_filter((weights - mean) / (std + 1e-9), 7).mean(0)
        # rows: the predictions of each text token and of the end-of-text
        matrix = weights[len(self._prompt) - 1:-1].cpu().numpy()
        rows, frames = _dtw_path(-matrix)
        last_frame = int((clip_s + BEYOND_CLIP_S) / _ENCODER_FRAME_S)
        for index, token in enumerate(tokens):
            start = frames[np.searchsorted(rows, index)]
            if start > last_frame and not self._is_wordless(token):
                return index
        return len(tokens)

    def _hidden(self, tokens: list[int], features, cache: dict | None = None, through_layer: int | None = None):
        """The decoder's hidden states for ``tokens`` (whisper's TextDecoder.forward without its projection
        onto the 51 864-token vocabulary, which the caller applies only where it needs logits)."""
        import torch

        decoder = self._model.decoder
        offset = next(iter(cache.values())).shape[1] if cache else 0
        x = decoder.token_embedding(torch.tensor([tokens], device=self.device))
        x = (x + decoder.positional_embedding[offset:offset + len(tokens)]).to(features.dtype)
        for block in decoder.blocks[:None if through_layer is None else through_layer + 1]:
            x = block(x, features, mask=decoder.mask, kv_cache=cache)
        return x if through_layer is not None else decoder.ln(x)

    def _logits(self, hidden):
        import torch.nn.functional as F

        return F.linear(hidden, self._model.decoder.token_embedding.weight).float()

    def _greedy(self, features, budget: int, cache: dict) -> tuple[list[int], float, float]:
        tokenizer = self._tokenizer
        hidden = self._hidden(self._prompt, features, cache)
        sot = tokenizer.sot_sequence.index(tokenizer.sot)
        no_speech = float(self._logits(hidden[0, sot]).softmax(-1)[tokenizer.no_speech])
        logits = self._logits(hidden[:, -1])
        tokens: list[int] = []
        logprob_sum = 0.0
        for step in range(budget):
            logits[:, self._suppress] = -np.inf
            if step == 0:
                logits[:, self._suppress_at_start] = -np.inf
            logprobs = logits.log_softmax(-1)
            token = int(logprobs.argmax(-1))
            logprob_sum += float(logprobs[0, token])
            if token == tokenizer.eot:
                break
            tokens.append(token)
            loop = repeated_tail(tokens)
            if loop:
                del tokens[-loop:]
                break
            logits = self._logits(self._hidden([token], features, cache)[:, -1])
        return tokens, no_speech, logprob_sum / (len(tokens) + 1)

    def _is_wordless(self, token: int) -> bool:
        if token not in self._wordless:
            self._wordless[token] = not any(c.isalnum() for c in self._tokenizer.decode([token]))
        return self._wordless[token]

    def warm_up(self) -> None:
        self.transcribe(np.zeros(ASR_SAMPLE_RATE, dtype=np.float32))
