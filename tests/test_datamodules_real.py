"""The real benchmarks: counts and shapes on the real files, conventions against independent
computations, safety (pickles, missing data), and one CLI fast_dev_run per config."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from kruzoo.datamodules import (
    PixelMNISTDataModule,
    PolyphonicMusicDataModule,
    PTBCharDataModule,
    TIMITDataModule,
)
from kruzoo.datamodules.download import DataNotFoundError
from kruzoo.datamodules.polyphonic import UnsafePickleError, read_mat_rolls, read_pickle_rolls, safe_load_pickle
from kruzoo.datamodules.ptb import StreamWindows, read_symbols
from kruzoo.datamodules.timit import PHONES, read_audio, read_phn

import fakedata  # tests/ is on sys.path (pytest rootdir-relative "prepend" import mode)

REPO = Path(__file__).resolve().parents[1]


_CACHE: dict = {}


def _once(key, build):
    """Load a full real dataset once per test session (``real_data_dir`` is function-scoped, so
    the expensive part is memoised here instead of in a module-scoped fixture)."""
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def _setup(dm):
    dm.prepare_data()
    dm.setup()
    return dm


# -- MNIST --------------------------------------------------------------------------------------

@pytest.fixture
def mnist_plain(real_data_dir):
    return _once(("mnist", real_data_dir), lambda: _setup(PixelMNISTDataModule(str(real_data_dir / "mnist"))))


@pytest.fixture
def raw_train_pixels(real_data_dir) -> np.ndarray:
    """The training images parsed independently (IDX header of 16 bytes, then uint8 pixels)."""
    with gzip.open(real_data_dir / "mnist" / "train-images-idx3-ubyte.gz", "rb") as f:
        data = f.read()
    assert int.from_bytes(data[0:4], "big") == 0x00000803 and int.from_bytes(data[4:8], "big") == 60_000
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(60_000, 784)


def test_mnist_splits_shapes_and_first_label(mnist_plain, raw_train_pixels):
    sizes = {split: len(ds) for split, ds in mnist_plain.datasets.items()}
    assert sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    first = mnist_plain.datasets["train"][0]
    assert first["inputs"].shape == (784, 1) and first["inputs"].dtype == torch.float32
    assert int(first["targets"]) == 5
    np.testing.assert_allclose(first["inputs"][:, 0].numpy(), raw_train_pixels[0] / 255.0, rtol=0, atol=1e-7)
    # validation is the LAST 5,000 training images
    val0 = mnist_plain.datasets["val"][0]["inputs"][:, 0].numpy()
    np.testing.assert_allclose(val0, raw_train_pixels[55_000] / 255.0, rtol=0, atol=1e-7)
    assert float(first["inputs"].min()) >= 0.0 and float(first["inputs"].max()) == 1.0
    assert mnist_plain.task.input_size == 1 and mnist_plain.task.target == "last"


def test_mnist_permutation_convention(real_data_dir, mnist_plain):
    perm = np.random.RandomState(92916).permutation(784)
    dm = PixelMNISTDataModule(str(real_data_dir / "mnist"), permute=True)
    dm.setup()
    for split, i in (("train", 3), ("val", 7), ("test", 11)):
        plain = mnist_plain.datasets[split][i]["inputs"][:, 0]
        permuted = dm.datasets[split][i]["inputs"][:, 0]
        assert torch.equal(permuted, plain[perm])
        assert not torch.equal(permuted, plain)
    other = PixelMNISTDataModule(str(real_data_dir / "mnist"), permute=True, permutation_seed=1)
    assert not np.array_equal(other.permutation, perm)
    np.testing.assert_array_equal(other.permutation, np.random.RandomState(1).permutation(784))


def test_mnist_batches(mnist_plain):
    batch = next(iter(mnist_plain.val_dataloader()))
    assert batch["inputs"].shape == (50, 784, 1) and batch["targets"].shape == (50,)


# -- PTB ----------------------------------------------------------------------------------------

@pytest.fixture
def ptb_dm(real_data_dir):
    return _once(("ptb", real_data_dir), lambda: _setup(PTBCharDataModule(str(real_data_dir / "ptb"))))


def test_ptb_counts_and_vocabulary(real_data_dir, ptb_dm):
    symbols = read_symbols(real_data_dir / "ptb" / "ptb.char.train.txt")
    assert len(symbols) == 5_017_482
    assert symbols.count("\n") == 42_068
    assert len(ptb_dm.vocabulary) == 50 and ptb_dm.vocabulary == sorted(ptb_dm.vocabulary)
    assert ptb_dm.vocabulary[0] == "\n" and "_" in ptb_dm.vocabulary
    assert ptb_dm.task.input_size == ptb_dm.task.output_size == 50 and ptb_dm.task.stateful
    train = ptb_dm.datasets["train"]
    length = (5_017_482 - 1) // 50
    assert train.stream_length == length and len(train) == -(-length // 30)


def test_ptb_windows_continue_their_streams(real_data_dir, ptb_dm):
    train = ptb_dm.datasets["train"]
    loader = ptb_dm.train_dataloader()
    batches = [b for _, b in zip(range(3), loader)]
    for batch in batches:
        assert batch["inputs"].shape == (50, 30, 50) and batch["targets"].shape == (50, 30)
        inputs = batch["inputs"].argmax(-1)
        assert torch.equal(batch["targets"][:, :-1], inputs[:, 1:])  # next symbol within the window
    for now, nxt in zip(batches, batches[1:]):  # window t+1 continues window t, row by row
        assert torch.equal(now["targets"][:, -1], nxt["inputs"][:, 0].argmax(-1))
    # row r is the r-th contiguous chunk of the training stream
    symbols = read_symbols(real_data_dir / "ptb" / "ptb.char.train.txt")
    vocab = {s: i for i, s in enumerate(ptb_dm.vocabulary)}
    L = train.stream_length
    for r in (0, 1, 49):
        expected = [vocab[s] for s in symbols[r * L : r * L + 91]]
        got = torch.cat([b["inputs"][r].argmax(-1) for b in batches]).tolist() + [int(batches[-1]["targets"][r, -1])]
        assert got == expected

    # validation: the last window is shorter, and each stream's targets over all windows are
    # exactly the next symbols of its chunk (every position counted once)
    val = ptb_dm.datasets["val"]
    val_symbols = read_symbols(real_data_dir / "ptb" / "ptb.char.valid.txt")
    assert len(val_symbols) == 393_042
    Lv = (len(val_symbols) - 1) // 50
    windows = [val.window(k) for k in range(len(val))]
    assert [w["targets"].shape[1] for w in windows[-2:]] == [30, Lv - 30 * (len(val) - 1)]
    row = 7
    targets = torch.cat([w["targets"][row] for w in windows]).tolist()
    assert targets == [vocab[s] for s in val_symbols[row * Lv + 1 : (row + 1) * Lv + 1]]


def test_ptb_ranks_get_whole_disjoint_streams():
    full = torch.arange(1000)  # positions stand in for symbols
    r0 = StreamWindows(full, vocab_size=1000, num_streams=4, bptt=5, rank=0, world_size=2)
    r1 = StreamWindows(full, vocab_size=1000, num_streams=4, bptt=5, rank=1, world_size=2)
    L = 999 // 8
    assert r0.stream_length == r1.stream_length == L and len(r0) == len(r1)
    assert r0.inputs[:, 0].tolist() == [0, L, 2 * L, 3 * L]
    assert r1.inputs[:, 0].tolist() == [4 * L, 5 * L, 6 * L, 7 * L]
    assert torch.equal(r1.targets, r1.inputs + 1)


def _ptb_rank_streams(rank: int, world_size: int, store: str, data_dir: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        dm = PTBCharDataModule(data_dir, batch_size=3, bptt=5)
        dm.setup()
        train = dm.datasets["train"]
        torch.save({"inputs": train.inputs, "windows": len(train)}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_ptb_sharding_under_torch_distributed(tmp_path):
    """Two gloo ranks (loopback only): each takes its own 3 whole streams of the 6."""
    fakedata.make_fake_ptb(tmp_path / "ptb")
    torch.multiprocessing.start_processes(  # fork: no re-import of torch in the children
        _ptb_rank_streams, nprocs=2, start_method="fork",
        args=(2, str(tmp_path / "store"), str(tmp_path / "ptb"), str(tmp_path / "streams")),
    )
    single = PTBCharDataModule(str(tmp_path / "ptb"), batch_size=6, bptt=5)
    single.setup()
    ranks = [torch.load(tmp_path / f"streams.{r}") for r in range(2)]
    assert ranks[0]["windows"] == ranks[1]["windows"] == len(single.datasets["train"])
    assert torch.equal(torch.cat([r["inputs"] for r in ranks]), single.datasets["train"].inputs)


def test_ptb_worker_processes_keep_window_order(tmp_path):
    fakedata.make_fake_ptb(tmp_path, {"train": 200, "valid": 10, "test": 10})
    single = PTBCharDataModule(str(tmp_path), batch_size=4, bptt=7)
    multi = PTBCharDataModule(str(tmp_path), batch_size=4, bptt=7, num_workers=2)
    a = list(single.train_dataloader())
    b = list(multi.train_dataloader())
    assert len(a) == len(b) == len(single.datasets["train"]) > 4
    assert all(torch.equal(x["targets"], y["targets"]) for x, y in zip(a, b))


def test_ptb_unknown_symbol_in_validation_is_an_error(tmp_path):
    fakedata.make_fake_ptb(tmp_path)
    with open(tmp_path / "ptb.char.valid.txt", "a") as f:
        f.write("a b ~ c\n")
    with pytest.raises(ValueError, match="'~'.*not in the training vocabulary|not in the training vocabulary.*'~'"):
        PTBCharDataModule(str(tmp_path)).setup()


# -- polyphonic music ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, pickle_name, mat_name, counts", [
    ("jsb", "JSB Chorales.pickle", "JSB_Chorales.mat", (229, 76, 77)),
    ("nottingham", "Nottingham.pickle", "Nottingham.mat", (694, 173, 170)),
])
def test_music_counts_and_both_formats_agree(real_data_dir, name, pickle_name, mat_name, counts):
    folder = real_data_dir / "polyphonic"
    from_pickle, from_mat = read_pickle_rolls(folder / pickle_name), read_mat_rolls(folder / mat_name)
    for split, count in zip(("train", "val", "test"), counts):
        assert len(from_pickle[split]) == len(from_mat[split]) == count
        for a, b in zip(from_pickle[split], from_mat[split]):
            assert a.shape == b.shape and a.shape[1] == 88
            np.testing.assert_array_equal(a, b)
    # independent check of the note → column convention on the raw pickle content
    raw = safe_load_pickle(folder / pickle_name)
    step = raw["train"][0][0]
    assert sorted(np.flatnonzero(from_mat["train"][0][0]) + 21) == sorted(step)
    dm = PolyphonicMusicDataModule(name, str(folder))
    dm.prepare_data()
    dm.setup()
    assert tuple(len(dm.datasets[s]) for s in ("train", "val", "test")) == counts


def test_music_padded_batches_and_masks(real_data_dir):
    dm = PolyphonicMusicDataModule("jsb", str(real_data_dir / "polyphonic"), batch_size=5)
    dm.setup()
    rolls = read_mat_rolls(real_data_dir / "polyphonic" / "JSB_Chorales.mat")["val"][:5]
    batch = next(iter(dm.val_dataloader()))
    longest = max(len(r) for r in rolls) - 1
    assert batch["inputs"].shape == (5, longest, 88) and batch["mask"].shape == (5, longest)
    for b, roll in enumerate(rolls):
        n = len(roll) - 1
        assert batch["mask"][b].tolist() == [True] * n + [False] * (longest - n)
        np.testing.assert_array_equal(batch["inputs"][b, :n].numpy(), roll[:-1])
        np.testing.assert_array_equal(batch["targets"][b, :n].numpy(), roll[1:])
        assert not batch["inputs"][b, n:].any() and not batch["targets"][b, n:].any()
    assert dm.task.loss == "bernoulli" and dm.task.output_size == 88


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "JSB Chorales.pickle"
    path.write_bytes(pickle.dumps({"train": [_RunsCommand(f"touch {marker}")], "valid": [], "test": []}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        PolyphonicMusicDataModule("jsb", str(tmp_path)).setup()
    assert not marker.exists()
    path.write_bytes(pickle.dumps(eval, protocol=4))
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_load_pickle(path)


def test_music_pickle_with_a_note_off_the_keyboard_is_an_error(tmp_path):
    (tmp_path / "Nottingham.pickle").write_bytes(pickle.dumps({"train": [[(60,), (20,)]], "valid": [], "test": []}))
    with pytest.raises(ValueError, match="MIDI note 20"):
        read_pickle_rolls(tmp_path / "Nottingham.pickle")


# -- missing data -------------------------------------------------------------------------------

def test_missing_data_errors_name_folder_files_and_remedy(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(DataNotFoundError) as err:
        PixelMNISTDataModule(str(empty)).prepare_data()
    assert str(empty) in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)
    assert "download" in str(err.value)
    with pytest.raises(DataNotFoundError, match="ptb.char.train.txt"):
        PTBCharDataModule(str(empty)).prepare_data()
    with pytest.raises(DataNotFoundError) as err:
        PolyphonicMusicDataModule("pianomidi", str(empty)).prepare_data()
    assert "Piano_midi.mat" in str(err.value) and "Piano-midi.de.pickle" in str(err.value)
    with pytest.raises(DataNotFoundError, match="sha256"):  # never an unverified download
        PolyphonicMusicDataModule("musedata", str(empty), download=True).prepare_data()
    with pytest.raises(DataNotFoundError) as err:
        TIMITDataModule(str(empty)).prepare_data()
    assert "LDC93S1" in str(err.value) and str(empty) in str(err.value) and "data_dir" in str(err.value)
    with pytest.raises(ValueError, match="name must be one of"):
        PolyphonicMusicDataModule("bach")


# -- TIMIT (fake corpus in the real layout) -----------------------------------------------------

@pytest.fixture(scope="module")
def fake_timit(tmp_path_factory) -> Path:
    return fakedata.make_fake_timit(tmp_path_factory.mktemp("timit") / "TIMIT")


def _kaldi_mfcc_frame(frame: np.ndarray) -> np.ndarray:
    """Log energy + 12 MFCCs of one 400-sample frame, recomputed in float64 numpy following
    Kaldi's compute-mfcc-feats (remove DC, raw log energy, pre-emphasis 0.97, Povey window, 512-point
    power spectrum, 26 triangular mel bins over 20–8000 Hz, log, orthonormal DCT-II, lifter 22)."""
    x = frame.astype(np.float64)
    x = x - x.mean()
    log_energy = max(np.log(max(np.sum(x**2), np.finfo(np.float32).eps)), 0.0)  # energy floor 1
    x = np.concatenate([[x[0] - 0.97 * x[0]], x[1:] - 0.97 * x[:-1]])
    n = np.arange(400)
    x = x * (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85
    power = np.abs(np.fft.rfft(x, 512)) ** 2
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(20.0), mel(8000.0)
    delta = (hi - lo) / 27
    bin_mels = mel(np.arange(256) * 16000 / 512)
    energies = np.empty(26)
    for b in range(26):
        left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
        w = np.where((bin_mels > left) & (bin_mels <= centre), (bin_mels - left) / (centre - left),
                     np.where((bin_mels > centre) & (bin_mels < right), (right - bin_mels) / (right - centre), 0.0))
        energies[b] = max(np.dot(w, power[:256]), np.finfo(np.float32).eps)
    logs = np.log(energies)
    k = np.arange(13)[:, None]
    dct = np.sqrt(2 / 26) * np.cos(np.pi / 26 * (np.arange(26)[None, :] + 0.5) * k)
    dct[0] /= np.sqrt(2)
    ceps = (dct @ logs) * (1 + 11 * np.sin(np.pi * np.arange(13) / 22))
    ceps[0] = log_energy
    return ceps


def test_timit_splits_labels_and_features(fake_timit):
    dm = TIMITDataModule(str(fake_timit), protocol="speakers", include_sa=False)  # the earlier split
    dm.prepare_data()
    dm.setup()
    assert dm.task.input_size == 26 and dm.task.output_size == 61 == len(PHONES)
    # 10 training speakers: 1 held out (10%), 2 utterances each without SA; 4 test speakers
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 18, "val": 2, "test": 8}
    train_frames = torch.cat(dm.datasets["train"].features)
    assert torch.allclose(train_frames.mean(0), torch.zeros(26), atol=1e-4)
    assert torch.allclose(train_frames.std(0), torch.ones(26), atol=1e-4)

    test = dm.datasets["test"]
    index = next(i for i, u in enumerate(test.utterances) if (u.speaker, u.name) == ("MDAB0", "SI1027"))
    utterance = fake_timit / "TEST" / "DR1" / "MDAB0" / "SI1027.WAV"
    assert test.utterances[index].audio == utterance
    samples = read_audio(utterance)
    spans = read_phn(utterance.with_suffix(".PHN"))
    frames = 1 + (len(samples) - 400) // 160
    item = test[index]
    assert item["inputs"].shape == (frames, 26) and item["targets"].shape == item["mask"].shape == (frames,)
    # labels by hand: the span holding each frame centre; frames past the last span are masked
    for t in range(frames):
        centre = 160 * t + 200
        covering = [p for a, b, p in spans if a <= centre < b]
        if covering:
            assert item["mask"][t] and PHONES[int(item["targets"][t])] == covering[0]
        else:
            assert not item["mask"][t]
    assert not item["mask"].all()  # the fake .PHN leaves the last 400 samples uncovered
    # features: undo the normalisation and recompute frame 10 independently
    raw = item["inputs"].double() * dm.std.double() + dm.mean.double()
    t = 10
    np.testing.assert_allclose(raw[t, :13].numpy(), _kaldi_mfcc_frame(samples[160 * t: 160 * t + 400]),
                               rtol=2e-4, atol=2e-3)
    # deltas: the ±2-frame regression (Σ n (c[t+n] − c[t−n])) / 10 on the static features
    static = raw[:, :13]
    delta = sum(n * (static[t + n] - static[t - n]) for n in (1, 2)) / 10
    np.testing.assert_allclose(raw[t, 13:].numpy(), delta.numpy(), rtol=1e-4, atol=1e-3)


def test_timit_lower_case_layout_core_test_and_sa(tmp_path):
    root = fakedata.make_fake_timit(tmp_path / "timit", lower_case=True)
    dm = TIMITDataModule(str(root), protocol="speakers", core_test=True, include_sa=True, batch_size=3)
    dm.setup()
    # core test: MDAB0 and MTAS1 only; with SA: 4 utterances each
    assert len(dm.datasets["test"]) == 8 and len(dm.datasets["train"]) + len(dm.datasets["val"]) == 40
    batch = next(iter(dm.test_dataloader()))
    lengths = [len(dm.datasets["test"][i]["inputs"]) for i in range(3)]
    assert batch["inputs"].shape == (3, max(lengths), 26)
    for b, n in enumerate(lengths):
        assert not batch["mask"][b, n:].any()
        assert torch.equal(batch["mask"][b, :n], dm.datasets["test"][b]["mask"])


def test_timit_paper_protocol_is_the_default(fake_timit):
    """All TRAIN utterances with SA, ``val_utterances`` SI/SX utterances held out by the documented
    rule (speakers in RandomState(val_seed).permutation order of the sorted ids, names sorted), the
    complete TEST set with SA."""
    dm = TIMITDataModule(str(fake_timit), val_utterances=5)
    assert dm.protocol == "paper" and dm.include_sa
    dm.setup()
    train, val, test = (dm.datasets[s].utterances for s in ("train", "val", "test"))
    speakers = sorted(s for region in fakedata.FAKE_TIMIT_SPEAKERS["TRAIN"].values() for s in region)
    order = [speakers[i] for i in np.random.RandomState(0).permutation(len(speakers))]
    expected = [(order[0], "SI1027"), (order[0], "SX127"), (order[1], "SI1027"), (order[1], "SX127"),
                (order[2], "SI1027")]
    assert sorted((u.speaker, u.name) for u in val) == sorted(expected)
    assert len(train) == 10 * 4 - 5 and len(test) == 4 * 4  # every TEST utterance, SA included
    assert {u.name for u in test} == set(fakedata.FAKE_TIMIT_UTTERANCES)
    assert not {(u.speaker, u.name) for u in train} & set(expected)
    assert sum(u.name.startswith("SA") for u in train) == 20  # all SA sentences stay in training
    other = TIMITDataModule(str(fake_timit), val_utterances=5, val_seed=1)
    other.setup()
    assert {(u.speaker, u.name) for u in other.datasets["val"].utterances} != set(expected)


def test_timit_paper_protocol_refuses_what_it_cannot_hold(fake_timit, tmp_path):
    with pytest.raises(ValueError, match=r"val_utterances=184 but the training set has only 20 SI/SX"):
        TIMITDataModule(str(fake_timit)).setup()  # the fake corpus is far smaller than TIMIT
    with pytest.raises(ValueError, match=r"protocol='paper' uses all 4,620 .*core_test=True"):
        TIMITDataModule(str(tmp_path), core_test=True)
    with pytest.raises(ValueError, match=r"protocol must be one of 'paper', 'speakers', got 'kaldi'"):
        TIMITDataModule(str(tmp_path), protocol="kaldi")
    with pytest.raises(ValueError, match=r"val_utterances must be a positive integer, got 0"):
        TIMITDataModule(str(tmp_path), val_utterances=0)


# -- one fast_dev_run per config ----------------------------------------------------------------

TASKS = ["mnist", "pmnist", "ptb", "jsb", "nottingham", "musedata", "pianomidi", "timit"]
MODELS = ["kru", "lstm", "rnn", "gru", "urnn", "furnn", "kru_lstm"]


@pytest.fixture(scope="module")
def fake_music_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("music")
    fakedata.make_fake_music(folder, "MuseData.pickle")
    fakedata.make_fake_music(folder, "Piano-midi.de.pickle", "Piano_midi.mat", seed=1)
    return folder


# Every config of these folders: the zoo's seven per task and the recipe variants beside them
# (kru_factor_lr_30ep, lstm_forget_bias, kru_cosine, ...), so a variant that no longer parses fails here.
CONFIG_RUNS = [(task, p.stem) for task in TASKS for p in sorted((REPO / "configs" / task).glob("*.yaml"))]
assert {(task, model) for task in TASKS for model in MODELS} <= set(CONFIG_RUNS)


@pytest.mark.parametrize(("task", "model"), CONFIG_RUNS)
def test_config_fast_dev_run(task, model, real_data_dir, fake_music_dir, fake_timit, tmp_path):
    from kruzoo.cli import main

    config = REPO / "configs" / task / f"{model}.yaml"
    data_dir = {
        "mnist": real_data_dir / "mnist", "pmnist": real_data_dir / "mnist", "ptb": real_data_dir / "ptb",
        "jsb": real_data_dir / "polyphonic", "nottingham": real_data_dir / "polyphonic",
        "musedata": fake_music_dir, "pianomidi": fake_music_dir, "timit": fake_timit,
    }[task]
    args = ["fit", "--config", str(config), "--trainer.fast_dev_run", "1", "--trainer.default_root_dir",
            str(tmp_path), "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--data.data_dir", str(data_dir), "--data.batch_size", "2"]
    if task in ("mnist", "pmnist"):  # T=784: keep the step cheap, the data path is what is tested
        kru = model == "kru" or (model.startswith("kru_") and not model.startswith("kru_lstm"))
        args += ["--model.init_args.hidden_size", "16" if kru else "8"]
    if task == "timit":  # the paper's 184 validation utterances do not exist in the 10-speaker fake corpus
        args += ["--data.val_utterances", "4"]
    cli = main(args)
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
