"""The "Expert settings" of the Train form: optimiser, learning-rate controller, head, seed.

The defaults work; every technical name here carries a tooltip. Widgets take their values
from session state, which the form seeds from the project's stored settings.
"""
from __future__ import annotations

import streamlit as st

from engine.errors import ConfigError
from engine.training.backends import installed_backends, requested_backend
from engine.training.config import Backend, ClassWeights, Head, HeadFit, Optimizer, Pooling

KEY = "train_form_"
HEAD_NAMES = {Head.SEED.value: "Dense layer + dropout (the original recipe)",
              Head.SIMPLE.value: "Simple (recommended)"}
CLASS_WEIGHT_NAMES = {ClassWeights.AUTO.value: "Balance rare classes",
                      ClassWeights.NONE.value: "Off"}
POOLING_NAMES = {Pooling.MAX.value: "Strongest signal (max)", Pooling.AVG.value: "Average"}
BACKEND_NAMES = {Backend.TENSORFLOW.value: "TensorFlow", Backend.JAX.value: "JAX",
                 Backend.TORCH.value: "PyTorch"}
OPTIMIZER_NAMES = {Optimizer.ADAMAX.value: "Adamax", Optimizer.ADAM.value: "Adam (recommended)",
                   Optimizer.RMSPROP.value: "RMSprop"}


def backend_options() -> list[str]:
    """``auto`` and the backends installed here."""
    return [Backend.AUTO.value, *installed_backends()]


def _backend_name(choice: str) -> str:
    if choice != Backend.AUTO.value:
        return BACKEND_NAMES.get(choice, choice)
    try:
        chosen = requested_backend(choice).value
    except ConfigError:
        return "Automatic"
    return f"Automatic ({BACKEND_NAMES.get(chosen, chosen)})"


def render_expert() -> dict:
    """The expert widgets; returns TrainConfig fields."""
    with st.expander("Expert settings (the defaults work)"):
        col1, col2, col3 = st.columns(3)
        values = {
            "batch_size": col1.number_input("Batch size", 1, 1024, key=f"{KEY}batch",
                                            help="Photos per training step."),
            "optimizer": col2.selectbox("Optimizer", list(OPTIMIZER_NAMES), key=f"{KEY}optimizer",
                                        format_func=OPTIMIZER_NAMES.get),
            "learning_rate": col3.number_input("Learning rate", 1e-6, 1.0, format="%.5f",
                                               step=1e-4, key=f"{KEY}lr"),
        }
        st.markdown("**Learning-rate controller** (lowers the learning rate when training "
                    "stops improving)")
        col1, col2, col3, col4 = st.columns(4)
        values |= {
            "patience": col1.number_input("Patience (epochs)", 1, 1000, key=f"{KEY}patience",
                                          help="Epochs without improvement before the learning "
                                               "rate is lowered."),
            "stop_patience": col2.number_input("Stop after", 1, 1000, key=f"{KEY}stop_patience",
                                               help="Times the learning rate is lowered without "
                                                    "improvement before training stops."),
            "threshold": col3.number_input("Threshold", 0.0, 1.0, step=0.05, key=f"{KEY}threshold",
                                           help="Above this training accuracy the controller "
                                                "watches the validation loss instead."),
            "factor": col4.number_input("Factor", 0.01, 0.99, step=0.05, key=f"{KEY}factor",
                                        help="The learning rate is multiplied by this."),
        }
        col1, col2, col3, col4 = st.columns(4)
        values |= {
            "dwell": col1.toggle("Go back to the best", key=f"{KEY}dwell",
                                 help="When training stops improving, return to the best weights "
                                      "so far before going on (dwell)."),
            "early_stopping": col2.toggle("Plain early stopping", key=f"{KEY}early",
                                          help="Instead of the learning-rate controller: stop "
                                               "when the validation loss stops improving."),
            "class_weights": col3.selectbox("Class weights", list(CLASS_WEIGHT_NAMES),
                                            key=f"{KEY}class_weights",
                                            format_func=CLASS_WEIGHT_NAMES.get,
                                            help="Give rare classes more weight (inverse "
                                                 "frequency)."),
            "seed": col4.number_input("Random seed", 0, 2**31 - 1, key=f"{KEY}seed",
                                      help="The same number gives the same run again."),
        }
        col1, col2, col3 = st.columns(3)
        fine_lr = col1.number_input(
            "Fine-tuning learning rate (0 = a hundredth of the first)", 0.0, 1.0, format="%.6f",
            step=1e-5, key=f"{KEY}fine_lr")
        values |= {
            "fine_tune_learning_rate": fine_lr or None,
            "label_smoothing": col2.number_input("Label smoothing", 0.0, 0.5, step=0.05,
                                                 key=f"{KEY}smoothing",
                                                 help="Softens the targets; can help with "
                                                      "noisy labels."),
            "fine_tune_blocks": col3.number_input(
                "Parts retrained when fine-tuning (0 = whole model)", 0, 100, key=f"{KEY}blocks",
                help="How many of the backbone's top blocks learn in step 2. Whole blocks are "
                     "unfrozen; with pretrained weights, the batch-normalisation statistics "
                     "stay as they were."),
        }
        gradient = st.toggle(
            "Step 1 by gradient descent, as the 000 seed does", key=f"{KEY}gradient",
            help="Off (recommended): step 1 fits the new last layer exactly in seconds, an "
                 "L2-regularized logistic regression on the backbone's features whose "
                 "strength is chosen on the validation photos. On: step 1 trains it epoch by "
                 "epoch with the optimizer and learning rate above, stopping when the "
                 "validation loss stops improving (the 000 seed's way; with a few hundred "
                 "photos it overfits within a few epochs). The original-recipe head and "
                 "'Vary them in step 1 too' always use gradient descent.")
        values["head_fit"] = HeadFit.GRADIENT.value if gradient else HeadFit.SOLVE.value
        col1, col2, col3 = st.columns(3)
        values |= {
            "head": col1.selectbox("Last layers (head)", list(HEAD_NAMES), key=f"{KEY}head",
                                   format_func=HEAD_NAMES.get,
                                   help="Simple (recommended): BatchNorm, dropout and one "
                                        "softmax layer, a logistic regression on the "
                                        "standardised features. The original recipe: "
                                        "BatchNorm, Dense 256 with L1/L2 penalties "
                                        "and dropout."),
            "pooling": col2.selectbox("Pooling", list(POOLING_NAMES), key=f"{KEY}pooling",
                                      format_func=POOLING_NAMES.get),
            "dropout": col3.number_input("Dropout", 0.0, 0.9, step=0.05, key=f"{KEY}dropout"),
        }
        values["backend"] = st.selectbox(
            "Training engine", backend_options(), key=f"{KEY}backend", format_func=_backend_name,
            help="The Keras backend that runs the training: TensorFlow (the default), JAX or "
                 "PyTorch, as installed on this computer. Automatic uses the KERAS_BACKEND "
                 "environment variable when it is set, else TensorFlow. JAX or PyTorch can use "
                 "a graphics card where TensorFlow cannot (Windows, Apple computers); the "
                 "README says which to install.")
    return values
