"""Networks: the op zoo, fixed baselines, search cells and supernets (plain PyTorch, no Ray).

Importing the package registers the core spaces' networks, supernets and size summaries and the fixed network
families (each module registers its own, ``raynas.nn.registry``); a method's own register from its package."""

from raynas.nn import (  # noqa: F401  (each registers what it defines)
    damgan_g,
    darts_net,
    darts_search,
    discriminators,
    eagan_d,
    eagan_g,
    generators,
    progan,
    stylegan2,
    swd_net,
    swd_search,
)
