"""TrialConfig: defaults, registry-driven choices, clear errors, combined checks."""

import pytest

from gansweep.search_spaces import BUILTIN_SPACES, load_space
from gansweep.trainables.augment import AUGMENTATIONS
from gansweep.trainables.config import ConfigError, TrialConfig, parse_overrides, read_config
from gansweep.trainables.data import DATASETS
from gansweep.trainables.losses import LOSSES
from gansweep.trainables.models import ARCHITECTURES
from gansweep.trainables.optimizers import OPTIMIZERS


def error_of(**values) -> str:
    with pytest.raises(ConfigError) as info:
        TrialConfig.from_dict(values)
    return str(info.value)


def test_defaults_validate_and_describe_every_field():
    cfg = TrialConfig()
    assert (cfg.dataset, cfg.architecture, cfg.loss, cfg.optimizer) == (
        "ring8",
        "mlp",
        "ns",
        "adam",
    )
    for name, field in TrialConfig.model_fields.items():
        assert field.description, f"field {name} has no description"
        assert name == name.lower() and " " not in name  # flat snake_case keys


@pytest.mark.parametrize(
    ("field", "registry"),
    [("loss", LOSSES), ("optimizer", OPTIMIZERS), ("dataset", DATASETS)],
)
def test_unknown_names_list_the_registry(field, registry):
    message = error_of(**{field: "bogus"})
    assert f"{field}: unknown {field} 'bogus'; valid: {', '.join(registry)}" in message


def test_every_registry_entry_is_a_valid_choice():
    for loss in LOSSES:
        TrialConfig(loss=loss)
    for optimizer in OPTIMIZERS:
        TrialConfig(optimizer=optimizer)
    for name, spec in DATASETS.items():
        archs = [a for a, arch in ARCHITECTURES.items() if spec.kind in arch.kinds]
        assert archs, f"no architecture takes dataset {name}"
        for arch in archs:
            TrialConfig(dataset=name, architecture=arch)
    TrialConfig(dataset="digits", architecture="dcgan", augment=",".join(AUGMENTATIONS))


def test_unknown_keys_are_refused_with_the_valid_keys():
    message = error_of(learning_rate=0.1)
    assert "learning_rate: unknown key; valid keys: dataset, data_path" in message


def test_bad_values_name_the_field_and_the_value():
    message = error_of(batch_size=0, lr_g=-1.0, penalty="wgan-gp")
    assert "batch_size: Input should be greater than or equal to 1 (got 0)" in message
    assert "lr_g: Input should be greater than 0 (got -1.0)" in message
    assert "penalty: unknown penalty 'wgan-gp'; valid: none, gp, r1, dragan" in message


def test_wrong_types_are_refused():
    assert "steps: Input should be a valid integer" in error_of(steps="many")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (dict(dataset="ring8", conditional=True), "conditional=True needs a labelled dataset"),
        (dict(dataset="ring8", architecture="dcgan"), "architecture 'dcgan' does not take vector"),
        (dict(augment="cutout"), "augment 'cutout' works on images"),
        (dict(dataset="digits", architecture="dcgan", image_size=28), "image_size in 8, 16, 32"),
        (dict(image_size=32), "image_size is for image data"),
        (dict(nesterov=True, optimizer="adam"), "nesterov=True needs optimizer 'sgd'"),
        (dict(augment="cutout,none", dataset="digits"), "use 'none' alone"),
        (
            dict(pac=3, batch_size=256),
            "pac 3 does not divide batch_size 256 (D judges packs of pac samples); valid pac "
            "for this batch_size: 1, 2, 4, or a batch_size that is a multiple of 3",
        ),
        (dict(pac=2, batch_size=9), "valid pac for this batch_size: 1, 3, or a batch_size"),
        (dict(augment="zoom", dataset="digits"), "unknown augmentation 'zoom'; valid: none"),
        (dict(device="tpu"), "unknown device 'tpu'; valid: auto, cpu, cuda, cuda:N"),
    ],
)
def test_fields_that_only_make_sense_together_are_checked_together(values, fragment):
    assert fragment in error_of(**values)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (dict(pac=0), "pac: Input should be greater than or equal to 1 (got 0)"),
        (dict(pac=5), "pac: Input should be less than or equal to 4 (got 5)"),
        (dict(lr_schedule="step"), "unknown lr_schedule 'step'; valid: constant, linear, cosine"),
        (dict(lr_floor=1.5), "lr_floor: Input should be less than or equal to 1 (got 1.5)"),
        (dict(lr_warmup=-1), "lr_warmup: Input should be greater than or equal to 0 (got -1)"),
    ],
)
def test_packing_and_schedules_refuse_values_out_of_range(values, fragment):
    assert fragment in error_of(**values)


def test_every_pac_and_schedule_is_a_valid_choice():
    from gansweep.trainables.config import MAX_PAC
    from gansweep.trainables.schedules import LR_SCHEDULES

    for pac in range(1, MAX_PAC + 1):
        assert TrialConfig(pac=pac, batch_size=12 * pac).pac == pac
    for schedule in LR_SCHEDULES:
        TrialConfig(lr_schedule=schedule, lr_floor=0.1, lr_warmup=100)
    # The defaults are today's engine: no packing, the configured rates throughout.
    cfg = TrialConfig()
    assert (cfg.pac, cfg.lr_schedule, cfg.lr_warmup) == (1, "constant", 0)


def test_combination_names_the_study_axes():
    assert TrialConfig(loss="wgan", penalty="gp").combination == "wgan-gp-adam"
    assert TrialConfig(d_norm="spectral", optimizer="sgd").combination == "ns-sn-sgd"
    assert TrialConfig(loss="wgan", weight_clip=0.01).combination == "wgan-clip-adam"
    images = dict(dataset="digits", architecture="dcgan")
    assert (
        TrialConfig(**images, loss="hinge", penalty="r1", conditional=True, n_critic=2,
                    augment="translation,cutout", g_norm="batch").combination
        == "hinge-r1-gbn-adam-nc2-ac-aug_translation+cutout"
    )  # fmt: skip
    assert (
        TrialConfig(pac=2, lr_schedule="cosine", lr_warmup=100, n_critic=3).combination
        == "ns-adam-nc3-pac2-lr_cosine-wu100"
    )
    # lr_floor is tuned, not chosen: the trial's param, not its name
    assert TrialConfig(lr_schedule="linear", lr_floor=0.1).combination == "ns-adam-lr_linear"


@pytest.mark.parametrize("space_name", sorted(BUILTIN_SPACES))
def test_no_two_combinations_of_a_space_share_a_name(space_name):
    """Every component a built-in space searches (a choice of names, flags or counts; not
    a grid of float hyperparameters) shows in the combination name: configs that differ
    in one such axis never share a name (the digits space searches conditional and
    augment, which the name once left out)."""
    space = load_space(space_name)
    axes = [
        p for p in space.params
        if p.discrete and not any(isinstance(v, float) for v in p.values())
    ]  # fmt: skip
    assert axes, f"space {space_name!r} searches no component"
    for param in axes:
        names: dict[str, object] = {}
        for value in param.values():
            try:
                cfg = TrialConfig.from_dict({**space.fixed, param.name: value})
            except ConfigError:  # a value valid only with other searched values
                continue
            assert cfg.combination not in names, (param.name, value, names)
            names[cfg.combination] = value
        assert len(names) >= 2, param.name


def test_overrides_parse_as_yaml_scalars():
    assert parse_overrides(["lr_g=2.0e-4", "loss=wgan", "conditional=true", "steps=10"]) == {
        "lr_g": 2e-4,
        "loss": "wgan",
        "conditional": True,
        "steps": 10,
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["lr_g"])


def test_read_config_merges_file_and_overrides_and_skips_notes(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: hinge\nsteps: 100\n_provenance: {sweep: demo}\n")
    cfg = read_config(path, ["steps=50"])
    assert (cfg.loss, cfg.steps) == ("hinge", 50)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("loss: [unclosed", "is not valid YAML"), ("- a\n- b\n", "must hold a mapping")],
)
def test_read_config_refuses_malformed_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        read_config(path)


def test_read_config_refuses_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config(tmp_path / "nope.yaml")
