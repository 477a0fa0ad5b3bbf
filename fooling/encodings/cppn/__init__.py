"""The CPPN (indirect) encoding: genome, mutation, batched rendering, serialisation."""

from .encoding import CPPNEncoding
from .genome import Genome
from .render import Style, render
from .serialize import genome_from_json, genome_to_json

__all__ = ["CPPNEncoding", "Genome", "Style", "genome_from_json", "genome_to_json", "render"]
