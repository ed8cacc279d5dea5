"""initlab on the models people use: transformers architectures built from tiny configs.

No download: every model is built from a config with random weights. For each architecture,
without example inputs: discovery follows the real data flow (one forward on fake tensors),
never module order; the nonlinearity after every MLP and attention projection is the one the
architecture applies; Conv1D's (in, out) layout gives the right fans; a causal LM's logits are
of healthy scale at init; and the probe runs in train mode and finds the signal healthy.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

import initlab
from initlab.torch.model import InitWarning, discover
from initlab.torch.probe import probe

tf = pytest.importorskip("transformers")

V, D = 64, 32  # vocabulary and width of every model here


def _text(**extra):
    return dict(vocab_size=V, max_position_embeddings=64, **extra)


BUILDERS = {
    "bert": lambda: tf.BertForMaskedLM(tf.BertConfig(**_text(
        hidden_size=D, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))),
    "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=V, n_embd=D, n_layer=2, n_head=2, n_positions=64, bos_token_id=0,
        eos_token_id=0)),
    "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**_text(
        hidden_size=D, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=64))),
    "t5": lambda: tf.T5ForConditionalGeneration(tf.T5Config(
        vocab_size=V, d_model=D, d_kv=16, d_ff=64, num_layers=2, num_heads=2)),
    "vit": lambda: tf.ViTForImageClassification(tf.ViTConfig(
        image_size=16, patch_size=4, num_channels=3, hidden_size=D, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=10)),
    "whisper": lambda: tf.WhisperForConditionalGeneration(tf.WhisperConfig(
        vocab_size=V, d_model=D, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
        max_source_positions=16, max_target_positions=32, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1)),
    "mistral": lambda: tf.MistralForCausalLM(tf.MistralConfig(**_text(
        hidden_size=D, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=64))),
    "bart": lambda: tf.BartForConditionalGeneration(tf.BartConfig(**_text(
        d_model=D, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64))),
    "gpt_neo": lambda: tf.GPTNeoForCausalLM(tf.GPTNeoConfig(**_text(
        hidden_size=D, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
        window_size=8))),
    "roberta": lambda: tf.RobertaForMaskedLM(tf.RobertaConfig(
        vocab_size=V, hidden_size=D, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=70)),
}  # fmt: skip

ATTENTION, RESIDUAL, PRODUCT = ("attention",), ("residual",), ("product",)
GELU, RELU, SILU = ("activation", "gelu"), ("activation", "relu"), ("activation", "silu")
_BART_LIKE = {
    r"(self_attn|encoder_attn)\.[qkv]_proj": ATTENTION,
    r"(self_attn|encoder_attn)\.out_proj": RESIDUAL,
    r"\.fc1": GELU,
    r"\.fc2": RESIDUAL,
}
_LLAMA_LIKE = {
    r"self_attn\.[qkv]_proj": ATTENTION,
    r"self_attn\.o_proj": RESIDUAL,
    r"mlp\.gate_proj": SILU,
    r"mlp\.up_proj": PRODUCT,
    r"mlp\.down_proj": RESIDUAL,
}
_BERT_LIKE = {
    r"attention\.self\.(query|key|value)": ATTENTION,
    r"attention\.output\.dense": RESIDUAL,
    r"intermediate\.dense": GELU,
    r"layer\.\d+\.output\.dense": RESIDUAL,
}
#: What the output of each MLP and attention projection reaches first, per architecture.
EXPECTED = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "gpt2": {r"attn\.c_attn": ATTENTION, r"attn\.c_proj": RESIDUAL, r"mlp\.c_fc": GELU,
             r"mlp\.c_proj": RESIDUAL},
    "gpt_neo": {r"attention\.[qkv]_proj": ATTENTION, r"attention\.out_proj": RESIDUAL,
                r"mlp\.c_fc": GELU, r"mlp\.c_proj": RESIDUAL},
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "t5": {r"(SelfAttention|EncDecAttention)\.[qkv]": ATTENTION,
           r"(SelfAttention|EncDecAttention)\.o": RESIDUAL,
           r"DenseReluDense\.wi": RELU, r"DenseReluDense\.wo": RESIDUAL},
    "vit": {r"attention\.[qkv]_proj": ATTENTION, r"attention\.o_proj": RESIDUAL,
            r"mlp\.fc1": GELU, r"mlp\.fc2": RESIDUAL},
    "whisper": _BART_LIKE,
    "bart": _BART_LIKE,
}  # fmt: skip
#: How many projections each pattern set must cover (2 layers each side).
COUNTS = {"bert": 12, "roberta": 12, "gpt2": 8, "gpt_neo": 12, "llama": 14, "mistral": 14,
          "t5": 32, "vit": 12, "whisper": 32, "bart": 32}  # fmt: skip
CAUSAL = ("gpt2", "llama", "mistral", "gpt_neo")


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return BUILDERS[name]()


def batch(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, V, (4, 8), generator=g)
    if name == "vit":
        return {"pixel_values": torch.randn(4, 3, 16, 16, generator=g)}
    if name == "whisper":
        return {"input_features": torch.randn(2, 8, 32, generator=g),
                "decoder_input_ids": ids[:2]}  # fmt: skip
    if name in ("t5", "bart"):
        return {"input_ids": ids, "decoder_input_ids": ids}
    return {"input_ids": ids}


def init_quietly(model: torch.nn.Module, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.init(model, seed=0, **kwargs)
    ours = [str(w.message) for w in caught if issubclass(w.category, InitWarning)]
    return report, ours


@pytest.mark.parametrize("name", list(BUILDERS))
def test_architecture_without_example_inputs(name):
    model = build(name)
    report, warned = init_quietly(model)
    # The real data flow, from one forward on fake tensors: no layer guessed by module order.
    assert report.discovery.startswith("fake"), (report.discovery, report.discovery_notes)
    assert not [r.parameter for r in report.rows if r.found_by == "module order"]
    assert not any("module order" in w for w in warned), warned
    # Every MLP and attention projection reaches what the architecture applies to it.
    matched = 0
    for row in report.rows:
        if row.kind != "weight" or not row.parameter.endswith(".weight"):
            continue
        layer = row.parameter[: -len(".weight")]
        hits = [want for pattern, want in EXPECTED[name].items() if re.search(pattern + "$", layer)]
        if not hits:
            continue
        matched += 1
        want = hits[0]
        link = discover_link(report, row)
        assert link[0] == want[0], (row.parameter, row.follows)
        if want[0] == "activation":
            assert want[1] in (row.activation or ""), (row.parameter, row.activation)
            assert row.gain == pytest.approx(initlab.gains.calculate_gain(
                "gelu" if "gelu" in row.activation else want[1]), rel=2e-2)  # fmt: skip
        else:
            assert row.gain == 1.0 and row.rule == "linear", (row.parameter, row.rule)
    assert matched == COUNTS[name]
    # Every weight written has the std its rule states.
    for row in report.rows:
        if row.kind == "weight" and row.action == "initialized" and row.std:
            assert row.measured_std == pytest.approx(row.std, rel=0.25), row.parameter


def discover_link(report, row) -> tuple[str]:
    """The kind of link a row shows: from its `follows` phrase."""
    text = row.follows or ""
    if row.activation:
        return ("activation",)
    for kind, words in (("attention", "attention"), ("residual", "residual add"),
                        ("product", "product"), ("output", "output")):  # fmt: skip
        if text.startswith(words):
            return (kind,)
    return (text,)


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_lm_logits_are_of_healthy_scale_at_init(name):
    model = build(name)
    init_quietly(model)
    model.eval()
    with torch.no_grad():
        logits = model(**batch(name)).logits
    assert 0.3 <= float(logits.std()) <= 3.0
    # ...so the loss starts near ln V, the loss of a uniform guess.
    ids = batch(name)["input_ids"]
    with torch.no_grad():
        loss = float(model(input_ids=ids, labels=ids).loss)
    assert loss < 1.5 * math.log(V)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_probe_in_train_mode_is_healthy_after_init(name):
    model = build(name)
    init_quietly(model)
    report = probe(model, batch(name), mode="train")
    assert report.forward.status == "healthy", report.forward
    assert report.backward.status == "healthy", report.backward


def test_conv1d_fans_read_in_out_layout():
    model = build("gpt2")
    report, _ = init_quietly(model)
    for layer, fans in (("attn.c_attn", (D, 3 * D)), ("attn.c_proj", (D, D)),
                        ("mlp.c_fc", (D, 4 * D)), ("mlp.c_proj", (4 * D, D))):  # fmt: skip
        row = report[f"transformer.h.0.{layer}.weight"]
        assert (row.fan_in, row.fan_out) == fans, layer
        assert row.std == pytest.approx(row.gain / math.sqrt(fans[0]))
        assert "(in, out)" in row.note


def test_tied_embedding_is_initialized_for_its_output_role():
    model = build("gpt2")
    report, _ = init_quietly(model)
    row = report["transformer.wte.weight"]
    assert "lm_head.weight" in row.aliases
    assert row.std == pytest.approx(1 / math.sqrt(D))
    assert "output role" in row.note
    assert model.lm_head.weight is model.transformer.wte.weight


def test_vit_position_embeddings_and_class_token_are_embeddings():
    report, _ = init_quietly(build("vit"))
    for name in ("vit.embeddings.position_embeddings", "vit.embeddings.cls_token"):
        row = report[name]
        assert row.kind == "embedding" and row.fan_in == D, name
        assert row.std == pytest.approx(1 / math.sqrt(D))


def test_discovery_changes_nothing_and_meta_models_cost_nothing():
    model = build("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = discover(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert found.links["model.layers.0.mlp.gate_proj"].activation.name == "silu"
    with torch.device("meta"):
        big = tf.LlamaForCausalLM(tf.LlamaConfig(
            vocab_size=32000, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
            intermediate_size=11008))  # fmt: skip
    found = discover(big)
    assert found.method.startswith("fake")
    assert found.links["model.layers.31.mlp.gate_proj"].activation.name == "silu"
    assert found.links["model.layers.31.mlp.down_proj"].kind == "residual"
    assert all(p.is_meta for p in big.parameters())
