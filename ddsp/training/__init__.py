"""DDSP training system: data, networks, models, trainers and tools."""
