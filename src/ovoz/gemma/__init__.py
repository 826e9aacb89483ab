"""Everything that knows Gemma 4: the only package that imports transformers' Gemma 4 classes and peft."""
