"""Keras (TensorFlow backend) side of the course: data, models, losses, metrics, training."""

from course_utils import env as _env

if _env.is_dry_run():  # ./course dry-run: every keras.Model.fit runs 1 epoch of a few steps
    from .train import install_dry_run_cap

    install_dry_run_cap()
