"""adapters/: dialogym and the ecosystems around it (see docs/reach.md).

Each sub-package bridges to one outside package, which is an optional extra and is imported
only by that sub-package: ``openenv`` serves every registered game as an OpenEnv environment
server (``dialogym env-serve``; extra ``dialogym[openenv]``), ``textarena`` registers
TextArena's two-player games as ordinary dialogym games (extra ``dialogym[textarena]``).
The room sits between ``agents`` (the OpenEnv server's other seats are agents) and
``benchmarks``.
"""
