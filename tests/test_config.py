from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from reid_stargan.config import (
    ConfigError,
    add_config_args,
    apply_overrides,
    config_from_args,
    config_to_dict,
    dump_config_yaml,
    load_config,
    replace_config,
)


@dataclass
class GanSection:
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    n_critic: int = 5


@dataclass
class ToyConfig:
    name: str = "toy"
    seed: int | None = None
    image_size: tuple[int, int] = (256, 128)
    attrs: list[str] = field(default_factory=lambda: ["Male"])
    mode: Literal["baseline", "camstyle"] = "baseline"
    gan: GanSection = field(default_factory=GanSection)


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_base_inheritance_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path / "base.yaml", {"name": "base", "attrs": ["A", "B"], "gan": {"lambda_rec": 1, "n_critic": 3}})
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "child.yaml", {"_base_": "../base.yaml", "attrs": ["C"], "gan": {"lambda_rec": 5}})
    cfg = load_config(ToyConfig, tmp_path / "sub" / "child.yaml")
    assert cfg.name == "base"
    assert cfg.attrs == ["C"]
    assert cfg.gan.lambda_rec == 5.0 and isinstance(cfg.gan.lambda_rec, float)
    assert cfg.gan.n_critic == 3  # inherited from the base, not the dataclass default
    assert cfg.gan.lambda_gp == 10.0


def test_multiple_bases_apply_in_order(tmp_path):
    write(tmp_path / "a.yaml", {"name": "a", "seed": 1})
    write(tmp_path / "b.yaml", {"name": "b"})
    write(tmp_path / "c.yaml", {"_base_": ["a.yaml", "b.yaml"]})
    cfg = load_config(ToyConfig, tmp_path / "c.yaml")
    assert (cfg.name, cfg.seed) == ("b", 1)


def test_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    write(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(ToyConfig, tmp_path / "a.yaml")


def test_dotted_overrides_parse_yaml_values(tmp_path):
    cfg = load_config(ToyConfig, None, ["gan.lambda_rec=5", "seed=7", "image_size=[64, 32]", "mode=camstyle"])
    assert cfg.gan.lambda_rec == 5.0
    assert cfg.seed == 7
    assert cfg.image_size == (64, 32)
    assert cfg.mode == "camstyle"
    assert load_config(ToyConfig, None, ["seed=null"]).seed is None
    assert load_config(ToyConfig, None, ["gan.lambda_gp=3e-4"]).gan.lambda_gp == 3e-4  # YAML 1.1 string


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(ToyConfig, None, ["gan.lambda_recc=5"])
    message = str(err.value)
    assert "gan.lambda_recc" in message
    for valid in ("lambda_rec", "lambda_gp", "n_critic"):
        assert valid in message


@pytest.mark.parametrize(
    "override, key",
    [("gan.n_critic=1.5", "gan.n_critic"), ("name=3", "name"), ("image_size=[1, 2, 3]", "image_size"),
     ("mode=hhl", "mode"), ("attrs=Male", "attrs"), ("gan.lambda_rec=true", "gan.lambda_rec")],
)
def test_type_mismatch_is_an_error_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_config(ToyConfig, None, [override])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key.subkey=value"):
        apply_overrides({}, ["no_equals_sign"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(ToyConfig, tmp_path / "missing.yaml")


def test_dump_round_trips_through_yaml(tmp_path):
    cfg = load_config(ToyConfig, None, ["seed=3", "gan.lambda_rec=2.5"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config_yaml(cfg))
    assert load_config(ToyConfig, path) == cfg
    assert config_to_dict(cfg)["image_size"] == [256, 128]
    assert replace_config(cfg, ["seed=4"]).seed == 4


def test_cli_flags(tmp_path):
    import argparse

    write(tmp_path / "c.yaml", {"name": "from-file"})
    parser = argparse.ArgumentParser()
    add_config_args(parser)
    args = parser.parse_args(["--config", str(tmp_path / "c.yaml"), "--set", "seed=1", "gan.n_critic=2",
                              "--set", "name=cli", "--dry-run"])
    cfg = config_from_args(ToyConfig, args)
    assert (cfg.name, cfg.seed, cfg.gan.n_critic, args.dry_run) == ("cli", 1, 2, True)


def test_a_moved_key_is_read_under_its_new_name(tmp_path):
    """`augment.celeba_num_test` moved to `data`: configs, saved runs and commands that use the old
    name still work, resume sees no change, and a pipeline record's old key matches the new one."""
    from reid_stargan.config import moved_flat_key
    from reid_stargan.gan.config import StarGANConfig
    from reid_stargan.utils.run import resume_config

    path = tmp_path / "old.yaml"
    path.write_text("data: {name: celeba}\naugment: {hflip: false, celeba_num_test: 40}\n")
    cfg = load_config(StarGANConfig, path)
    assert cfg.data.celeba_num_test == 40 and cfg.data.name == "celeba" and not cfg.augment.hflip
    assert "celeba_num_test" not in yaml.safe_load(dump_config_yaml(cfg))["augment"]
    assert load_config(StarGANConfig, None, ["augment.celeba_num_test=4"]).data.celeba_num_test == 4
    saved = yaml.safe_load(path.read_text())
    resumed, changes = resume_config(StarGANConfig, saved, None, ("gan",), path)
    assert resumed.data.celeba_num_test == 40 and changes == {}
    assert moved_flat_key("face:augment.celeba_num_test") == "face:data.celeba_num_test"
    assert moved_flat_key("augment.hflip") == "augment.hflip"
