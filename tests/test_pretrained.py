"""Every shipped checkpoint loads (sha256 checked, weights only) and reproduces its recorded
golden metrics; bad names and tampered files are refused."""

import hashlib
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from lightning.pytorch import Trainer

from kruzoo import pretrained
from kruzoo.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")

NAMES = pretrained.list()


def test_the_zoo_is_not_empty():
    assert NAMES, "no pretrained checkpoints are shipped"


@pytest.mark.parametrize("name", NAMES)
def test_golden_metrics(name, request):
    entry = pretrained.info(name)
    model = pretrained.load(name)
    assert not model.training and model.pretrained_info == entry
    assert model.parameter_counts() == entry["parameters"]
    overrides = {}
    if "data_dir" in entry["data"].get("init_args", {}):
        real = request.getfixturevalue("real_data_dir")
        overrides["data_dir"] = str(real / Path(entry["data"]["init_args"]["data_dir"]).name)
        overrides["download"] = False
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      limit_test_batches=entry["golden"]["test_batches"])
    (metrics,) = trainer.test(model, pretrained.datamodule(name, **overrides), verbose=False)
    for key, expected in entry["golden"]["metrics"].items():
        assert float(metrics[key]) == pytest.approx(expected, rel=1e-4, abs=1e-7), key


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown pretrained checkpoint 'nope'; available: "):
        pretrained.load("nope")


@pytest.mark.parametrize("name", NAMES[:1])
def test_tampered_file_is_refused(name, tmp_path, monkeypatch):
    shutil.copy(pretrained.INDEX, tmp_path / "index.json")
    file = tmp_path / pretrained.info(name)["file"]
    shutil.copy(pretrained.FOLDER / file.name, file)
    with open(file, "r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    monkeypatch.setattr(pretrained, "INDEX", tmp_path / "index.json")
    with pytest.raises(ValueError, match=rf"{name}.*has sha256 [0-9a-f]{{64}}, expected"):
        pretrained.load(name)


@pytest.mark.parametrize("name", [n for n in NAMES if n == "kru_copy_t1000"])
def test_cli_evaluates_a_pretrained_name(name, tmp_path):
    entry = pretrained.info(name)
    cli = main(["test", "--config", str(REPO / entry["config"]), "--ckpt_path", f"pretrained:{name}",
                "--data.test_size", "40", "--data.batch_size", "20", "--trainer.logger", "false",
                "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert float(metrics["test/acc"]) == 1.0 and float(metrics["test/loss"]) < 0.002


# -- every entry names the configs and commands that produced it (issue 13) -------------------------
def _config_path(command: str) -> str:
    match = re.match(r"kruzoo fit --config (\S+\.yaml)( |$)", command)
    assert match, f"not a 'kruzoo fit --config FILE' command: {command}"
    return match[1]


@pytest.mark.parametrize("name", NAMES)
def test_entry_configs_exist_and_match_their_hashes(name):
    entry = pretrained.info(name)
    commands = entry["train_commands"]
    assert commands and all(isinstance(c, str) for c in commands)
    used = [_config_path(c) for c in commands]
    assert set(entry["config_sha256"]) == {entry["config"], *used}
    assert entry["evaluate_command"] == f"kruzoo test --config {entry['config']} --ckpt_path pretrained:{name}"
    for config, digest in entry["config_sha256"].items():
        path = REPO / config
        assert path.is_file(), f"{name}: {config} is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"{name}: {config} changed since the index recorded it; if the change alters the recipe the shipped "
            "checkpoint no longer comes from this file: record the settings it was trained with instead")
    assert all("--ckpt_path" in c for c in commands[1:]), "every command after the first continues a run"
    assert entry["provenance"]
    assert (REPO / entry["log"] / "config.yaml").is_file()


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# The settings that shape training and selection (caps such as max_time, logger and folders are not).
RECIPE_KEYS = ("seed_everything", "model.", "data.", "checkpoint.monitor", "checkpoint.mode", "trainer.max_epochs",
               "trainer.gradient_clip_val", "trainer.gradient_clip_algorithm", "trainer.val_check_interval",
               "trainer.limit_val_batches", "trainer.accumulate_grad_batches", "trainer.precision")
NOT_RECIPE = ("model.init_args.task", "data.init_args.data_dir", "data.init_args.download")
# Options added after some shipped runs were trained, with the value that reproduces what those runs did:
# a log without the option matches only if today's command resolves to exactly this value.
ADDED_LATER = {"model.init_args.recurrent_lr_scale": 1.0, "model.init_args.forget_bias": None,
               "model.init_args.chrono_t_max": None}  # their defaults


@pytest.mark.parametrize("name", NAMES)
def test_last_command_resolves_to_the_settings_its_run_logged(name):
    """Today's config files plus the recorded command line give the settings the run saved in its
    config.yaml (the resolved config of the run's last command, kept in experiments/logs/)."""
    import yaml

    from kruzoo.cli.main import build_cli

    entry = pretrained.info(name)
    args = shlex.split(entry["train_commands"][-1])[2:]  # after "kruzoo fit"
    if "--ckpt_path" in args:
        at = args.index("--ckpt_path")
        del args[at:at + 2]
    args = [a.replace("configs/", str(REPO / "configs") + "/", 1) if a.startswith("configs/") else a for a in args]
    cli = build_cli([*args, "--trainer.logger", "false"], run=False)
    resolved = _flat(yaml.safe_load(yaml.safe_dump(json.loads(json.dumps(cli.config.as_dict(), default=str)))))
    logged = _flat(yaml.safe_load((REPO / entry["log"] / "config.yaml").read_text()))
    for key, before in ADDED_LATER.items():
        if key in resolved:  # the model has the option
            logged.setdefault(key, before)
    differences = {key: (logged.get(key, "<absent>"), resolved.get(key, "<absent>"))
                   for key in set(logged) | set(resolved)
                   if key.startswith(RECIPE_KEYS) and not key.startswith(NOT_RECIPE)
                   and str(logged.get(key, "<absent>")) != str(resolved.get(key, "<absent>"))}
    assert not differences, f"{name}: logged vs today's command: {differences}"


def test_info_shows_the_commands_first():
    name = "kru_adding_t100"
    entry = pretrained.info(name)
    text = str(entry)
    assert text.splitlines()[1].startswith("reproduce")
    positions = [text.index(c) for c in entry["train_commands"]]
    assert positions == sorted(positions) and len(positions) == 2
    assert "configs/adding/kru_t100_decay.yaml" in text and entry["evaluate_command"] in text
    assert repr(entry) == text and dict(entry) == entry  # still the plain dict of the index


@pytest.mark.parametrize("name", ["kru_adding_t100", "kru_adding_t100_frozen"])
def test_recorded_command_sequence_runs_through_the_cli(name, tmp_path, monkeypatch):
    """The index's commands, in order, in one folder, run as written (resume checks included) — on a
    small model and short sequences, with a step budget in place of the recorded time caps."""
    entry = pretrained.info(name)
    monkeypatch.chdir(REPO)
    small = ["--model.init_args.hidden_size", "16", "--data.seq_len", "8", "--data.train_size", "40",
             "--data.val_size", "8", "--data.test_size", "8", "--trainer.val_check_interval", "2",
             "--trainer.default_root_dir", str(tmp_path),
             "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    for stage, command in enumerate(entry["train_commands"], 1):
        args = shlex.split(command)[1:]  # after "kruzoo"
        at = args.index("--trainer.max_time")
        args[at:at + 2] = ["--trainer.max_steps", str(4 * stage)]
        if "--resume_allow" in args:
            args[args.index("--resume_allow") + 1] += ",max_steps"
        tail = args.index("--ckpt_path") if "--ckpt_path" in args else len(args)
        cli = main([*args[:tail], *small, *args[tail:]])
        assert cli.trainer.global_step == 4 * stage
    scheduler = type(cli.trainer.lr_scheduler_configs[0].scheduler).__name__
    assert scheduler == "ExponentialLR"  # the continuation's schedule is in force
