"""Density-matrix MEGA-PRESS/PRESS simulation and basis sets (numpy/scipy only).

Public entry points: `sequence.MegaPressSequence`, `basis.simulate_basis`, `basis.cached_basis`,
`basis.default_basis`, `basis.load_basis`, `basis.save_basis`, `basis.apply_linewidth`,
`spins.load_spin_system`, `spins.available_metabolites`, `lcmodel.write_lcmodel_basis`.
"""
