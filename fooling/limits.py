"""Limits on what a file or an option can make a command do, checked before any work starts.

A file from elsewhere (a genome, an image) or a typo in an option must give a one-line
error, not hours of work or an out-of-memory kill. The numbers sit far above anything the
project itself writes: an evolved CPPN has at most ``cppn_max_hidden`` hidden nodes (200 by
default) and a few hundred connections; ImageNet elites are 224-260 px square.
"""

# fool render
MAX_RENDER_SIDE = 4096  # --size
MAX_RENDER_PIXELS = 4096 * 4096  # any image it draws: about 1 GB of memory at the peak

# CPPN genome files (fool render, and anything that reads elites/*.json)
MAX_GENOME_BYTES = 32 * 1024 * 1024
MAX_HIDDEN_NODES = 10_000
MAX_CONNECTIONS = 200_000
MAX_DEPTH = 2_000  # the longest path from an input: drawing takes one step per depth

# images read from files (fool ascend --init, elites/*.png read by transfer, gallery, retrain)
MAX_IMAGE_PIXELS = 8192 * 8192  # a bigger one is refused from its header, never decoded
# ... and its longer side may be at most this many times its shorter: a photo is resized for the network (shorter
# side 256 for ImageNet, or the genome's size for ascend --init), so a 60000x1 PNG would become 256 x 15,360,000
MAX_ASPECT = 64

# fool evolve --seeds: the runs of one group are open at once (each holds its lock and log.txt, its models, its
# archive), so a typo such as --seeds 0-100000 must not make thousands of run directories before failing
MAX_GROUP_RUNS = 256

# --seeds names at most this many seeds (a sweep runs them one after another; 0-9999999999 is a typo, and listing it
# took all the memory there was)
MAX_SEEDS = 100_000

# seeds handed to PyTorch as they are (fool attack --seed: PGD's random starts): torch.Generator takes 64 bits
TORCH_SEEDS = 2**64

# --eot: transforms per image and step; each multiplies a generation's forward passes (EOT papers use 10-100)
MAX_EOT = 1_000

# gradient steps per image: fool attack --steps (PGD's steps, CW's iterations per search step), fool ascend --steps,
# and the same arguments of fooling.attacks. Carlini & Wagner ran 10,000 iterations; each step is a forward and a
# backward pass of every image, and the engine keeps a confidence per image and step (a typo such as 10**12 ran forever
# or asked for terabytes)
MAX_GRADIENT_STEPS = 100_000
# PGD's restarts (--restarts): each is a whole attack of --steps steps (Madry et al. report 10 to 50)
MAX_RESTARTS = 1_000
# CW's binary-search steps over c (--cw-search-steps; the paper's 9): c grows tenfold at each failure until a success,
# so past about 300 it is infinite; a binary search has halved its interval to nothing long before this
MAX_SEARCH_STEPS = 100

# fool plot (and the gallery's plots): a classes.csv, metrics.csv or summary.json naming a later generation is damaged
# (at 100 generations a second a run would take four months to get there); longer runs are drawn from a sample of
# their generations (fooling.plots.series.PLOT_POINTS)
MAX_GENERATION = 1_000_000_000

# elite file names (<index>_<label>.png): a model's labels file may hold any text, a file system takes 255 bytes a name
MAX_LABEL_IN_NAME = 100

# fool train --name, fool retrain --name: the name is a file name in the models folder (NAME.pt, NAME-r99.json)
MAX_MODEL_NAME = 100
