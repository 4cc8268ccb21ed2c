"""Stage 1, the input: values/ read into one typed, checked model per environment.

model.py (what may be written in values/), loader.py (YAML with positions -> the model, every problem at once),
environments.py (the base and one overlay per environment), checks.py (rules that span the model's objects).
"""
