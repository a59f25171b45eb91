"""Session files without a model: schema round trips (hypothesis), garbage input, and the message for each bad file."""

from __future__ import annotations

import copy
import string
import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steertui.cli import main
from steertui.engine.session import SCHEMA_VERSION, Session, SessionError, loads
from steertui.engine.session import schema as S
from steertui.engine.session.store import dumps, from_data

SHA = "ab" * 32
N_LAYERS = 4
D_MODEL = 8

# ---- strategies --------------------------------------------------------------------------------------------
texts = st.text(max_size=12)
floats = st.floats(allow_nan=False, width=64)
small = st.integers(min_value=0, max_value=2**31)
shas = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
layers_st = st.lists(st.integers(0, N_LAYERS - 1), min_size=1, max_size=N_LAYERS, unique=True)
names = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
opt = lambda s: st.one_of(st.none(), s)  # noqa: E731


def header():
    return st.builds(S.Header, schema=st.just(SCHEMA_VERSION), version=texts, python=texts, torch=texts,
                     transformers=texts, nnsight=texts, created=texts, note=opt(texts))


def model():
    return st.builds(S.ModelRec, spec=st.text(min_size=1, max_size=12), name=texts, weights_sha256=texts,
                     revision=opt(texts), dtype=st.sampled_from(["float32", "bfloat16", "float16"]),
                     device=st.text(min_size=1, max_size=6), model_type=texts, n_layers=st.just(N_LAYERS),
                     d_model=st.just(D_MODEL), vocab_size=st.integers(1, 10**6))


def data():
    return st.builds(S.DataRec, label=texts, kind=st.sampled_from(["builtin", "secllmholmes"]), root=texts,
                     commit=opt(texts), files=st.dictionaries(texts, shas, max_size=4))


@st.composite
def vector(draw, name):
    layers = draw(layers_st)
    return S.VectorRec(name=name, file="s.safetensors", layers=layers,
                       method=draw(st.sampled_from(["mean-diff", "pca", "probe"])),
                       readout=draw(st.sampled_from(["last", "mean", "diff"])), d_model=D_MODEL,
                       pair_ids=draw(st.lists(texts, max_size=3)), split=draw(texts), seed=draw(opt(st.integers())),
                       source=draw(texts), sha256={str(L): draw(shas) for L in layers})


def interventions(vectors):
    if not vectors:
        return st.just([])
    iv = st.sampled_from(vectors).flatmap(lambda v: st.builds(
        S.Intervention, vector=st.just(v.name), layer=st.sampled_from(v.layers), alpha=floats,
        positions=st.sampled_from(["all", "prompt", "generated"])))
    return st.lists(iv, max_size=2)


def fl(n=3):
    return st.lists(floats, max_size=n)


def ids(n=3):
    return st.lists(small, max_size=n)


def step(vectors):
    steers = interventions(vectors)
    lens_layer = st.builds(S.LensLayerRec, layer=st.integers(0, N_LAYERS - 1), top_ids=st.lists(ids(), max_size=2),
                           top_texts=st.lists(st.lists(texts, max_size=2), max_size=2),
                           top_probs=st.lists(fl(), max_size=2), target_probs=opt(fl()),
                           target_ranks=opt(st.lists(st.integers(1, 100), max_size=2)))
    module = st.builds(S.ModuleRec, path=texts, access=texts, module=texts, type=texts, shape=opt(ids()),
                       dtype=opt(texts), flags=st.lists(texts, max_size=2), layer=opt(small), norm_mean=opt(floats),
                       abs_max=opt(floats), calls=small)
    layers = st.builds(S.LayersStep, kind=st.just("layers"), inputs=st.builds(S.LayersInputs, prompt=texts),
                       outputs=st.builds(S.LayersOutputs, n_tokens=small, n_layers=st.integers(1, 9),
                                         d_model=st.integers(1, 9), modules=st.lists(module, max_size=3)),
                       seconds=opt(floats), at=opt(texts))
    lens = st.builds(S.LensStep, kind=st.just("lens"), inputs=st.builds(
        S.LensInputs, prompt=texts, k=st.integers(1, 50), positions=st.lists(st.integers(-9, 9), min_size=1, max_size=3),
        target=opt(st.one_of(small, texts)), layers=opt(st.lists(st.integers(0, N_LAYERS - 1), max_size=3)),
        steers=steers), outputs=st.builds(
        S.LensOutputs, token_ids=ids(), token_texts=st.lists(texts, max_size=3), positions=ids(),
        target_id=opt(small), target_text=opt(texts), final_logits_check=floats,
        baseline=st.lists(lens_layer, max_size=2), steered=st.lists(lens_layer, max_size=2)))
    top_row = st.builds(S.TopTokensRowRec, baseline_ids=ids(), baseline_texts=st.lists(texts, max_size=3),
                        baseline_probs=fl(), steered_ids=ids(), steered_texts=st.lists(texts, max_size=3),
                        steered_probs=fl(), kl=floats)
    top = st.builds(S.TopTokensStep, kind=st.just("top_tokens"),
                    inputs=st.builds(S.TopTokensInputs, prompts=st.lists(texts, min_size=1, max_size=2),
                                     k=st.integers(1, 50), steers=steers),
                    outputs=st.builds(S.TopTokensOutputs, rows=st.lists(top_row, max_size=2)))
    gen_row = st.builds(S.GenerateRowRec, baseline_ids=ids(), baseline_text=texts, baseline_logprobs=fl(),
                        steered_ids=ids(), steered_text=texts, steered_logprobs=fl(), first_divergence=opt(small))
    gen = st.builds(S.GenerateStep, kind=st.just("generate"),
                    inputs=st.builds(S.GenerateInputs, prompts=st.lists(texts, min_size=1, max_size=2),
                                     max_new_tokens=st.integers(1, 64), stop_at_eos=st.booleans(),
                                     batch_size=opt(st.integers(1, 8)), steers=steers),
                    outputs=st.builds(S.GenerateOutputs, rows=st.lists(gen_row, max_size=2)))
    row = st.builds(S.EvalRowRec, layer=small, alpha=floats, cwe=texts, n=small, shift=floats, accuracy=floats,
                    flip_rate=floats, random_shift=floats, random_flip_rate=floats, kl=floats, n_kl=small,
                    baseline_accuracy=floats, baseline_yes_rate=floats, yes_rate=floats, random_kl=floats)
    fold = st.builds(S.FoldRec, fold=small, threshold=floats, train_pairs=st.lists(texts, max_size=2),
                     test_pairs=st.lists(texts, max_size=2))
    ev = st.builds(S.EvaluateStep, kind=st.just("evaluate"), inputs=st.builds(
        S.EvaluateInputs, pair_ids=st.lists(texts, min_size=1, max_size=3),
        layers=st.lists(st.integers(0, N_LAYERS - 1), min_size=1, max_size=2),
        alphas=st.lists(floats, min_size=1, max_size=2), method=st.sampled_from(["mean-diff", "pca", "probe"]),
        readout=st.sampled_from(["last", "mean", "diff"]), split=st.sampled_from(["pairs", "cwe"]),
        seed=st.integers(), folds=st.integers(1, 9), chunk_size=st.integers(1, 9), kl_tokens=st.integers(1, 99),
        yes=texts, no=texts), outputs=st.builds(S.EvaluateOutputs, yes_id=small, no_id=small,
                                                folds=st.lists(fold, max_size=2), rows=st.lists(row, max_size=2),
                                                truncated=st.lists(texts, max_size=2)))
    return st.one_of(layers, lens, top, gen, ev)


def build_step(rec):
    diag = st.builds(S.DiagnosticsRec, layer=small, n_pairs=small, consistency=opt(floats), vector_norm=floats,
                     residual_norm=floats, norm_ratio=floats, auroc_pairs=opt(floats), auroc_cwe=opt(floats),
                     folds_pairs=small, folds_cwe=small)
    return st.builds(S.BuildVectorsStep, kind=st.just("build_vectors"), inputs=st.builds(
        S.BuildVectorsInputs, vector=st.just(rec.name), pair_ids=st.lists(texts, min_size=1, max_size=3),
        layers=st.just(list(rec.layers)), method=st.just(rec.method), readout=st.just(rec.readout),
        split=texts, seed=opt(st.integers()), k_folds=st.integers(1, 9), chunk_size=st.integers(1, 9)),
        outputs=st.builds(S.BuildVectorsOutputs, sha256=st.just(dict(rec.sha256)),
                          diagnostics=st.lists(diag, max_size=2), truncated=st.lists(texts, max_size=2),
                          fallbacks=st.lists(texts, max_size=2)), seconds=opt(floats))


@st.composite
def sessions(draw):
    vnames = draw(st.lists(names, max_size=3, unique=True))
    vectors = [draw(vector(n)) for n in vnames]
    built = draw(st.lists(st.sampled_from(vectors), unique_by=lambda v: v.name)) if vectors else []
    steps = [draw(build_step(v)) for v in built] + draw(st.lists(step(vectors), max_size=4))
    return Session(steertui=draw(header()), model=draw(model()), data=draw(data()), vectors=vectors,
                   steering=S.Steering(interventions=draw(interventions(vectors))), steps=steps)


FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(sessions())
def test_round_trip(doc):
    text = dumps(doc)
    again = loads(text.encode("utf-8"), "rt.toml")
    assert again == doc
    assert dumps(again) == text


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_session_errors(raw):
    with pytest.raises(SessionError):
        loads(raw, "junk.toml")


toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), floats, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=12)


@FAST
@given(st.dictionaries(st.sampled_from(["steertui", "model", "data", "vectors", "steering", "steps", "x"]) | texts,
                       toml_values, max_size=6))
def test_random_toml_raises_only_session_errors(data):
    with pytest.raises(SessionError):
        loads(tomli_w.dumps(data).encode(), "junk.toml")


def _paths(node, prefix=()):
    """Every (path) into a plain-data tree."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@FAST
@given(sessions(), st.data())
def test_mutated_sessions_load_or_raise_session_errors(doc, draw):
    data = doc.to_data()
    paths = [p for p in _paths(data) if p]
    target = draw.draw(st.sampled_from(paths))
    parent = data
    for part in target[:-1]:
        parent = parent[part]
    action = draw.draw(st.sampled_from(["delete", "replace", "add"]))
    if action == "delete":
        del parent[target[-1]]
    elif action == "replace":
        parent[target[-1]] = draw.draw(toml_values)
    elif isinstance(parent, dict):
        parent[draw.draw(texts) + "_x"] = draw.draw(toml_values)
    else:
        parent.append(draw.draw(toml_values))
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):  # the mutation is not even TOML-writable (e.g. a list at the top)
        return
    try:
        loads(text, "mutated.toml")
    except SessionError as err:
        assert "\n" not in str(err)


# ---- one message per bad file ------------------------------------------------------------------------------------
def base_data() -> dict:
    vec = S.VectorRec(name="v1", file="x.safetensors", layers=[1, 2], method="mean-diff", readout="last",
                      d_model=D_MODEL, pair_ids=["p/pair-1"], sha256={"1": SHA, "2": SHA})
    doc = Session(
        steertui=S.Header(schema=SCHEMA_VERSION, version="0.1.0", python="3.11", torch="2", transformers="5",
                          nnsight="0.8.1", created="2026-01-01T00:00:00+00:00"),
        model=S.ModelRec(spec="demo", name="demo", weights_sha256="00", dtype="float32", device="cpu",
                         model_type="gpt_bigcode", n_layers=N_LAYERS, d_model=D_MODEL, vocab_size=100),
        data=S.DataRec(label="builtin examples", kind="builtin", root="builtin", files={"p/1": SHA}),
        vectors=[vec], steering=S.Steering(interventions=[S.Intervention(vector="v1", layer=2, alpha=4.0)]),
        steps=[S.LayersStep(kind="layers", inputs=S.LayersInputs(prompt="x"),
                            outputs=S.LayersOutputs(n_tokens=1, n_layers=N_LAYERS, d_model=D_MODEL, modules=[])),
               S.GenerateStep(kind="generate", inputs=S.GenerateInputs(prompts=["a"], max_new_tokens=2),
                              outputs=S.GenerateOutputs(rows=[S.GenerateRowRec(
                                  baseline_ids=[1, 2], baseline_text="ab", baseline_logprobs=[-1.0, -2.0],
                                  steered_ids=[1, 2], steered_text="ab", steered_logprobs=[-1.0, -2.0])]))])
    return doc.to_data()


def _err(data_or_text) -> SessionError:
    text = data_or_text if isinstance(data_or_text, (str, bytes)) else tomli_w.dumps(data_or_text)
    with pytest.raises(SessionError) as info:
        loads(text if isinstance(text, bytes) else text.encode(), "bad.toml")
    msg = str(info.value)
    assert msg.startswith("bad.toml: ") and "\n" not in msg and " — " in msg
    return info.value


def test_base_document_is_valid():
    doc = from_data(base_data(), "ok.toml")
    assert doc.steps[1].outputs.rows[0].baseline_ids == [1, 2]
    assert "schema = 1" in dumps(doc)


def test_not_toml():
    err = _err(b"[steertui\nschema = 1\n")
    assert "is not TOML" in str(err) and "line 1" in str(err)
    assert "not UTF-8" in str(_err(b"\xff\xfe\x00garbage"))


def test_unknown_key_gets_did_you_mean():
    data = base_data()
    data["steps"][0]["inputs"]["promt"] = data["steps"][0]["inputs"].pop("prompt")
    err = _err(data)
    assert err.key == "steps[0].inputs.promt"
    assert "did you mean 'prompt'?" in str(err)
    data = base_data()
    data["modle"] = data.pop("model")
    err = _err(data)
    assert err.key in ("modle", "model")
    data = base_data()
    data["model"]["dtyp"] = "float32"
    err = _err(data)
    assert err.key == "model.dtyp" and "did you mean 'dtype'?" in str(err)


def test_wrong_types_name_the_key():
    data = base_data()
    data["model"]["n_layers"] = "4"
    err = _err(data)
    assert err.key == "model.n_layers" and "integer" in str(err)
    data = base_data()
    data["steps"][1]["outputs"]["rows"][0]["baseline_ids"][1] = "two"
    err = _err(data)
    assert err.key == "steps[1].outputs.rows[0].baseline_ids[1]"
    data = base_data()
    data["steps"][1]["kind"] = "generat"
    err = _err(data)
    assert err.key == "steps[1].kind" and "did you mean 'generate'?" in str(err)
    data = base_data()
    data["vectors"][0]["file"] = "../../etc/passwd"
    assert _err(data).key == "vectors[0].file"


def test_newer_schema_is_refused():
    data = base_data()
    data["steertui"]["schema"] = SCHEMA_VERSION + 1
    data["steertui"]["from_the_future"] = True
    err = _err(data)
    assert err.key == "steertui.schema" and "upgrade steertui" in str(err)


def test_cross_references():
    data = base_data()
    data["steering"]["interventions"][0]["vector"] = "v2"
    err = _err(data)
    assert err.key == "steering.interventions[0].vector" and "did you mean 'v1'?" in str(err)
    data = base_data()
    data["steering"]["interventions"][0]["layer"] = 3
    assert _err(data).key == "steering.interventions[0].layer"
    data = base_data()
    data["vectors"][0]["d_model"] = D_MODEL + 1
    assert "d_model" in str(_err(data))
    data = base_data()
    data["vectors"][0]["sha256"] = {"1": SHA}
    assert _err(data).key == "vectors[0].sha256"


def test_cli_exit_2_for_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    data = base_data()
    data["steps"][0]["inputs"]["promt"] = data["steps"][0]["inputs"].pop("prompt")
    bad.write_text(tomli_w.dumps(data))
    assert main(["replay", str(bad), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("steertui: error: ") and str(bad) in err and "steps[0].inputs.promt" in err
    assert len(err.splitlines()) == 1
    (tmp_path / "junk.toml").write_bytes(b"\x00\x01 not toml")
    assert main(["replay", str(tmp_path / "junk.toml")]) == 2
    assert main(["replay", str(tmp_path / "missing.toml")]) == 2


def test_loading_never_executes(tmp_path):
    """A session cannot name code: the only file it opens besides itself is a plain sidecar name beside it."""
    data = base_data()
    data["vectors"][0]["file"] = "/tmp/evil.safetensors"
    assert _err(data).key == "vectors[0].file"
    assert copy.deepcopy(base_data()) == tomllib.loads(tomli_w.dumps(base_data()))
