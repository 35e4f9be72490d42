"""Pre-processing of measured MEGA-PRESS data and THE network input (pure numpy/array-API).

Modules: features (network input, the contract with simulate and models), coils, align,
outliers, eddy, water, phase, qc, chain (the whole chain: preprocess_megapress).
"""
