"""Title generation: one package, one module per generator.

- ``gemma`` (+ ``gemma_base``, ``gemma_train``): the main titles, from a pretrained multilingual
  generator (Gemma 3 270M) with one LoRA adapter per model.
- ``encoder_decoder`` (+ ``beam``): "the question's own setup", a small decoder warm-started from the
  multilingual encoder (bert2bert), trained with the rating; kept beside the main titles so a class
  sees why that experiment writes 1-2 words.

Both answer the same question for one review at a time: ``titles(...) -> {model: title}`` for the
generator, ``generate_titles(...)`` for the seed decoder, which reads the encoder states the Engine
already computed. ``core.inference.Engine`` runs both, and every path (compare, batch, evaluate, the
CLI, the API) goes through it.
"""
