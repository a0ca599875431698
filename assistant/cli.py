"""The ``assistant`` command.

Every user-facing failure (bad audio, missing model package, bad option) ends as one ``error:`` line and
exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import AssistantConfig, ConfigError, load_config, parse_llm_spec

if TYPE_CHECKING:
    from ui.desktop_options import DesktopOptions
    from ui.session_factory import SessionFactory

EXIT_USER_ERROR = 2


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models (defaults: the bundled offline models)")
    group.add_argument("--config", type=Path, help="TOML file with [asr], [llm], [tts], [vad] tables")
    group.add_argument("--llm", metavar="BACKEND[:MODEL]",
                       help="llama-cpp:FILE.gguf | transformers:ID_OR_PATH | openai:BASE_URL#MODEL")
    group.add_argument("--asr", metavar="BACKEND[:MODEL]",
                       help="faster-whisper[:CT2_FOLDER] | clip-whisper[:CT2_FOLDER] | openai-whisper:CHECKPOINT.pt")
    group.add_argument("--tts", metavar="BACKEND[:VOICE]", help="piper[:VOICE.onnx] | espeak[:VOICE]")
    group.add_argument("--device", help="cpu, cuda or auto for the ASR and LLM (default: auto)")
    group.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="any other option, e.g. --set llm.max_answer_tokens=60 (repeatable)")


def build_config(args: argparse.Namespace) -> AssistantConfig:
    config = load_config(args.config)
    if args.llm:
        parse_llm_spec(args.llm, config.llm)
    if args.asr:
        backend, _, model = args.asr.partition(":")
        config.set("asr.backend", backend)
        config.set("asr.model", model)
    if args.tts:
        backend, _, voice = args.tts.partition(":")
        config.set("tts.backend", backend)
        config.set("tts.voice", voice)
    if args.device:
        config.set("asr.device", args.device)
        config.set("llm.device", args.device)
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise ConfigError(f"--set {assignment!r}: expected SECTION.FIELD=VALUE")
        config.set(key.strip(), value.strip())
    return config


def session_factory(args: argparse.Namespace) -> SessionFactory:
    """Load the models once; a transport makes each of its sessions from them."""
    from assistant.session import AssistantModels

    return AssistantModels(build_config(args), progress=not args.quiet).new_session


def command_ask(args: argparse.Namespace) -> int:
    from assistant.ask import ask
    from assistant.backends import load_stack
    from audio.wavfile import read_audio, write_wav

    config = build_config(args)
    audio = read_audio(args.audio, max_seconds=config.max_question_seconds) if args.audio else None
    stack = load_stack(config, progress=not args.quiet)
    result = ask(stack, config, audio=audio, text=args.text)
    if args.out and result.speech is not None:
        write_wav(args.out, result.speech)
    if args.json:
        print(json.dumps({"question": result.question, "answer": result.answer, "clauses": result.clauses,
                          "timings": result.timings, "load_seconds": stack.load_seconds,
                          "out": str(args.out) if args.out else None}, indent=2))
        return 0
    print(f"question: {result.question}")
    print(f"answer:   {result.answer}")
    if args.out:
        print(f"spoken answer written to {args.out}" if result.speech is not None
              else "the answer was empty: no audio written")
    print("timings:  " + ", ".join(f"{k}={v:.3f}" for k, v in result.timings.items() if k.endswith("_s")))
    return 0


def command_models(args: argparse.Namespace) -> int:
    from assistant import bundled
    from assistant.backends import load_stack

    print("bundled default models:")
    missing = 0
    for label, locate in bundled.BUNDLED.items():
        try:
            print(f"  {label:42s} {locate()}")
        except bundled.MissingModelError as error:
            missing += 1
            print(f"  {label:42s} MISSING: {error}")
    print("optional backends:")
    for module, what, install in (("llama_cpp", "llama.cpp (fast GGUF path)", "pip install 'assistant[llama]'"),
                                  ("transformers", "transformers", "pip install transformers"),
                                  ("whisper", "openai-whisper", "pip install openai-whisper")):
        from importlib.util import find_spec

        state = "installed" if find_spec(module) else f"not installed ({install})"
        print(f"  {what:42s} {state}")
    try:
        import torch

        cuda = "available" if torch.cuda.is_available() else "not available"
        print(f"  {'torch':42s} {torch.__version__}, cuda {cuda}")
    except ImportError:
        print(f"  {'torch':42s} not installed")
    if args.load:
        config = build_config(args)
        stack = load_stack(config, progress=True)
        print("loaded: " + ", ".join(f"{role}={getattr(model, 'name', '?')}" for role, model in (
            ("asr", stack.recognizer), ("llm", stack.language_model), ("tts", stack.synthesizer), ("vad", stack.vad))))
    return 1 if missing else 0


def _cannot_serve(args: argparse.Namespace, error: OSError) -> ConfigError:
    return ConfigError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}")


def command_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ui.webrtc.options import ServerOptions
    from ui.webrtc.server import serve_forever

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    options = ServerOptions(host=args.host, port=args.port, token=args.token or os.environ.get("ASSISTANT_TOKEN", ""),
                            max_sessions=args.max_sessions, ice_servers=args.ice_server,
                            event_log_dir=str(args.event_log_dir or ""), certfile=str(args.cert or ""),
                            keyfile=str(args.key or ""))
    if args.max_sessions < 1:
        raise ConfigError("--max-sessions must be at least 1")
    if args.port:  # find a taken port before spending seconds on loading models
        import socket

        with socket.socket() as probe:
            try:
                probe.bind((args.host, args.port))
            except OSError as error:
                raise _cannot_serve(args, error) from None
    new_session = session_factory(args)
    try:
        asyncio.run(serve_forever(new_session, options))
    except OSError as error:  # port taken, address not on this machine, unreadable certificate
        raise _cannot_serve(args, error) from None
    return 0


def _add_desktop_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sound devices")
    group.add_argument("--list-devices", action="store_true", help="list the sound devices and exit")
    group.add_argument("--input-device", metavar="INDEX_OR_NAME", help="microphone (default: the system's)")
    group.add_argument("--output-device", metavar="INDEX_OR_NAME", help="speakers (default: the system's)")
    group.add_argument("--sample-rate", type=int, metavar="HZ",
                       help="ask the devices for this rate (default: 48000 when offered, else their own)")
    group.add_argument("--headphones", action="store_true",
                       help="the microphone cannot hear the speakers: skip the echo canceller")
    group.add_argument("--show-workers", action="store_true", help="also show the two workers' roles")


def desktop_options_from_args(args: argparse.Namespace) -> DesktopOptions:
    from ui.desktop_options import DesktopOptions

    return DesktopOptions(input_device=args.input_device, output_device=args.output_device,
                          sample_rate=args.sample_rate, headphones=args.headphones,
                          show_workers=args.show_workers)


def command_desktop(args: argparse.Namespace) -> int:
    """Check the devices first (fast, clear errors), then load the models and run."""
    from ui.desktop import list_devices, run_desktop
    from ui.sound_card import DeviceError, choose_devices

    try:
        if args.list_devices:
            print(list_devices())
            return 0
        options = desktop_options_from_args(args)
        devices = choose_devices(options.input_device, options.output_device, options.sample_rate)
        print(f"devices: {devices.describe()}", file=sys.stderr)
        return run_desktop(session_factory(args), options)
    except DeviceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


def command_gradio(args: argparse.Namespace) -> int:
    from ui.gradio_app import GradioOptions, launch, set_offline_environment

    options = GradioOptions(host=args.host, port=args.port, token=args.token or "")
    set_offline_environment()  # before the models load: the hub libraries read it once, on import
    launch(session_factory(args), options)
    return 0


def command_train_state(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per model: the per-clip timings stay comparable
    from assistant.bundled import piper_joe_voice, whisper_tiny_en
    from assistant.recordings import DEFAULT_DATA_DIR, find_data_dir, load_manifest
    from audio.tts import EspeakSynthesizer, PiperSynthesizer
    from audio.vad import SileroVad
    from duplex.state.hearing import Hearing, hear_dataset
    from duplex.state.train import run, stderr_log

    data_dir = find_data_dir(args.data)
    if data_dir is None:
        raise ConfigError(f"no MANIFEST.tsv in {args.data or DEFAULT_DATA_DIR}: pass --data with the recordings folder")
    log = stderr_log()

    def recognizer():  # whisper tiny.en on one CPU thread, as the listener runs it
        if args.asr == "clip-whisper":
            from audio.clip_whisper import ClipWhisperRecognizer

            return ClipWhisperRecognizer(whisper_tiny_en(), device="cpu", threads=1)
        from audio.asr import FasterWhisperRecognizer

        return FasterWhisperRecognizer(whisper_tiny_en(), device="cpu", cpu_threads=1)

    def voice(name: str):  # "piper:joe" or "espeak:VOICE"
        backend, _, voice_name = name.partition(":")
        return PiperSynthesizer(*piper_joe_voice()) if backend == "piper" else EspeakSynthesizer(voice_name)

    embedder = None
    if not args.no_embedding:
        try:
            from assistant.llm.embedding import LlamaCppEmbedder

            embedder = LlamaCppEmbedder(threads=1)
        except (ImportError, FileNotFoundError) as error:
            log(f"no embedder ({error}): the features head only")
    hearing = Hearing(args.asr, recognizer, SileroVad, voice, embedder)
    dataset = hear_dataset(load_manifest(data_dir), data_dir, args.cache, hearing, args.speculate_after, log)
    run(args, dataset, log)
    return 0


def _add_train_state_command(commands) -> None:
    from duplex.options import DuplexOptions
    from duplex.state.train import add_training_arguments

    parser = commands.add_parser("train-state", help="hear the state decision's training clips with the bundled "
                                                      "models, train its heads and write their weights")
    parser.add_argument("--data", type=Path, help="the shared recordings folder (default: ../shared/data/audio)")
    parser.add_argument("--asr", choices=("clip-whisper", "faster-whisper"), default=AssistantConfig().asr.backend,
                        help="the listener's ASR (default: the assistant's; the head fits the ASR it saw)")
    parser.add_argument("--speculate-after", type=float, default=DuplexOptions().speculate_after_s,
                        help="seconds into a pause at which the live session decides (default: the session's)")
    add_training_arguments(parser)
    parser.set_defaults(handler=command_train_state,
                        assistant_speaking_threshold=AssistantConfig().state_speaking_threshold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Full-duplex voice and vision assistant")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    ask_parser = commands.add_parser("ask", help="answer one spoken or typed question")
    source = ask_parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", type=Path, help="the question as a WAV/FLAC/OGG file")
    source.add_argument("--text", help="the question as text")
    ask_parser.add_argument("--out", type=Path, help="write the spoken answer to this WAV file")
    ask_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    ask_parser.add_argument("--quiet", action="store_true", help="no loading progress on stderr")
    _add_model_options(ask_parser)
    ask_parser.set_defaults(handler=command_ask)

    from ui.webrtc.options import ServerOptions  # a plain dataclass: the defaults' one home

    serve_parser = commands.add_parser("serve", help="browser voice and video chat (WebRTC) on this machine")
    serve_parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    serve_parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    serve_parser.add_argument("--token", help="access token (default: $ASSISTANT_TOKEN, else a random one per start)")
    serve_parser.add_argument("--max-sessions", type=int, default=ServerOptions.max_sessions,
                              help="calls at once; more get 'busy' (default %(default)s: what 2 cores serve in time)")
    serve_parser.add_argument("--ice-server", action="append", default=[], metavar="URL",
                              help="STUN/TURN server for calls across networks (default: none)")
    serve_parser.add_argument("--event-log-dir", type=Path, help="write one JSONL event log per call here")
    serve_parser.add_argument("--cert", type=Path, help="TLS certificate (browsers allow the microphone on other "
                                                          "hosts only over https)")
    serve_parser.add_argument("--key", type=Path, help="TLS private key for --cert")
    serve_parser.add_argument("--verbose", action="store_true", help="log calls starting and ending")
    serve_parser.add_argument("--quiet", action="store_true", help="no loading progress on stderr")
    _add_model_options(serve_parser)
    serve_parser.set_defaults(handler=command_serve)

    desktop_parser = commands.add_parser("desktop", help="talk through this computer's microphone and speakers")
    _add_desktop_arguments(desktop_parser)
    desktop_parser.add_argument("--quiet", action="store_true", help="no loading progress on stderr")
    _add_model_options(desktop_parser)
    desktop_parser.set_defaults(handler=command_desktop)

    gradio_parser = commands.add_parser("gradio", help="the assistant in a gradio page (microphone, camera, text)")
    gradio_parser.add_argument("--host", default="127.0.0.1",
                               help="bind address (default 127.0.0.1: this machine only)")
    gradio_parser.add_argument("--port", type=int, default=7860, help="0 picks a free port (default 7860)")
    gradio_parser.add_argument("--token", help="login password for user 'assistant' (default: $ASSISTANT_TOKEN, "
                                               "else a random one printed at start)")
    gradio_parser.add_argument("--quiet", action="store_true", help="no loading progress on stderr")
    _add_model_options(gradio_parser)
    gradio_parser.set_defaults(handler=command_gradio)

    models_parser = commands.add_parser("models", help="show the installed models and backends")
    models_parser.add_argument("--load", action="store_true", help="also load them and show load times")
    _add_model_options(models_parser)
    models_parser.set_defaults(handler=command_models)

    from assistant.replay.cli import add_replay_commands  # replay / eval: scenario files (docs/replay.md)

    add_replay_commands(commands, _add_model_options, build_config)
    _add_train_state_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    args = build_parser().parse_args(argv)
    from assistant.ask import NoSpeechError
    from assistant.bundled import MissingModelError
    from audio.frames import AudioFormatError

    try:
        return args.handler(args)
    except (AudioFormatError, ConfigError, MissingModelError, NoSpeechError, FileNotFoundError, ImportError,
            ConnectionError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a model that raised: one line, the details on request
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
