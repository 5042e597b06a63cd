"""Training: trainer configs (:mod:`monai_nnunet.training.configs`); the trainer, handlers and execution follow.

Kept free of imports so that ``import monai_nnunet.training.configs`` (used by ``-tr`` parsing) stays light.
"""
