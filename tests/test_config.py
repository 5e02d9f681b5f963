import math

import pytest

from dnnlab import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig, variant_config


def test_defaults_are_the_books_baseline():
    c = variant_config("baseline")
    assert (c.model.depth, c.model.width) == (20, 100)
    assert (c.model.activation, c.model.kernel_initializer) == ("elu", "he_normal")
    assert (c.train.optimizer, c.train.learning_rate) == ("nadam", 5e-5)
    assert (c.train.batch_size, c.train.epochs, c.train.patience) == (32, 100, 20)
    assert (c.data.validation_size, c.data.standardize) == (5000, False)
    assert c.seed == 42


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ModelConfig(activation="relu6x"), "unknown activation 'relu6x'"),
        (lambda: ModelConfig(kernel_initializer="he"), "unknown kernel initializer 'he'"),
        (lambda: ModelConfig(depth=0), "depth must be a whole number >= 1"),
        (lambda: ModelConfig(width=2.5), "width must be a whole number >= 1"),
        (lambda: ModelConfig(dropout="gaussian"), "unknown dropout 'gaussian'"),
        (lambda: ModelConfig(dropout_rate=1.0), "dropout rate must be in [0, 1)"),
        (lambda: TrainConfig(learning_rate=-1e-3), "learning rate must be a positive number"),
        (lambda: TrainConfig(learning_rate=0), "learning rate must be a positive number"),
        (lambda: TrainConfig(learning_rate=math.nan), "learning rate must be a positive number"),
        (lambda: TrainConfig(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (lambda: TrainConfig(batch_size=0), "batch size must be a whole number >= 1"),
        (lambda: TrainConfig(momentum=1.0), "momentum must be in [0, 1)"),
        (lambda: DataConfig(validation_size=0), "validation size must be"),
        (lambda: RunConfig(seed=-1), "seed must be a whole number >= 0"),
        (lambda: variant_config("resnet"), "unknown variant 'resnet'"),
        (lambda: variant_config("baseline", learnin_rate=1.0), "unknown setting 'learnin_rate'"),
        (lambda: variant_config("baseline", lr=-5e-5), "learning rate must be a positive number"),
    ],
)
def test_invalid_settings_raise_one_clear_message(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_choice_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="choose one of: elu, selu, relu"):
        ModelConfig(activation="nope")


def test_overrides_reach_their_section_and_none_is_ignored():
    c = variant_config("baseline", seed=3, lr=1e-3, epochs=5, activation="swish", depth=None)
    assert (c.seed, c.train.learning_rate, c.train.epochs) == (3, 1e-3, 5)
    assert c.model.activation == "swish"
    assert c.model.depth == 20


def test_alpha_dropouts_rate_is_an_override():
    c = variant_config("alpha-dropout", dropout_rate=0.4)
    assert (c.model.dropout, c.model.dropout_rate) == ("alpha", 0.4)
    assert variant_config("alpha-dropout").model.dropout_rate == 0.1
    with pytest.raises(ConfigError, match=r"dropout rate must be in \[0, 1\)"):
        variant_config("alpha-dropout", dropout_rate=1.5)


def test_run_id_names_variant_and_seed_and_changes_with_any_setting():
    a = variant_config("baseline", seed=1)
    assert a.run_id.startswith("baseline-seed1-")
    assert a.run_id == variant_config("baseline", seed=1).run_id
    assert a.run_id != variant_config("baseline", seed=2).run_id
    assert a.run_id != variant_config("baseline", seed=1, lr=1e-4).run_id


def test_config_round_trips_through_a_dict():
    c = variant_config("baseline", seed=5, activation="selu", init="lecun_normal", standardize=True)
    assert RunConfig.from_dict(c.to_dict()) == c


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        variant_config().seed = 1
