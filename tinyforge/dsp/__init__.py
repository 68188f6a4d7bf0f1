"""Processing (DSP) blocks: one module per block, shared maths in small helper modules.

Blocks: :mod:`.raw`, :mod:`.flatten`, :mod:`.spectral_analysis`, :mod:`.spectrogram`, :mod:`.mfe`,
:mod:`.mfcc`, :mod:`.image`, :mod:`.mlperf_kws`. Find them by name with
:mod:`tinyforge.dsp.registry`. The contract every block follows is in :mod:`.base`.
"""
