"""The linear-combination model and its variable-projection solver.

Model (Provencher, MRM 30:672, 1993; FSL-MRS: Clarke et al., MRM 85:2950, 2021): each
sub-spectrum group g (edit-OFF, DIFF, or a single PRESS spectrum) is

    M_g(nu) = exp(i (phi0_g + phi1_g (ppm - ppm_ref))) FFT[ sum_k a_k B_gk(t) V(t) S_g(t) ](nu)
              + baseline_g(nu)

with non-negative amplitudes a_k shared by all groups, a Voigt decay
V(t) = exp(-pi l_L t - pi^2 l_G^2 t^2 / (4 ln 2)) shared by all groups (l_L, l_G: Lorentzian and
Gaussian FWHM in Hz), a frequency shift S_g(t) = exp(2 pi i df_g t), and a complex cubic-spline
baseline with a second-difference penalty. Optionally (LcmConfig.lineshape = "free") the
FID is also multiplied by L(t) = sum_j k_j exp(2 pi i j df t), the inverse FT of a real
kernel of area 1 on the DFT grid (df = 1 / (N dwell)), i.e. every line is convolved with
that kernel exactly, as in LCModel's free line shape (Provencher 1993); the kernel's
deviation from a delta carries a second-difference penalty. Optionally each basis column k
also gets its own shift d_k (B_gk(t) -> B_gk(t) exp(2 pi i d_k t), the same in every group)
with a Gaussian prior about 0, as LCModel's individual metabolite shifts (Provencher 1993):
its rows d_k / SD_k join the residual, so the fit is the maximum a posteriori one. An
observation is a sum of groups: edit-OFF = OFF, edit-ON = OFF + DIFF. Fitting OFF and ON
(rather than OFF and DIFF) keeps the noise of the observations independent, so the
least-squares fit is the maximum-likelihood one and the Fisher information is correct (OFF
and DIFF = ON - OFF have correlated noise).

Variable projection (Golub & Pereyra 1973): for given nonlinear parameters the baseline is
projected out exactly (it does not depend on them) and the amplitudes come from NNLS
(Lawson & Hanson 1974); scipy.optimize.least_squares fits the nonlinear parameters on the
projected residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

_FOUR_LN2 = 4.0 * math.log(2.0)

# Layout of the nonlinear parameter vector: 2 shared, then 3 per group.
N_SHARED = 2  # lorentz_hz, gauss_var_hz2 (= gauss_fwhm_hz ** 2, smooth at zero)
N_PER_GROUP = 3  # shift_hz, phase0_rad, phase1_rad_per_ppm


@dataclass(frozen=True)
class Observation:
    """A measured spectrum over the fit window, its weight (1 / noise SD) and its groups."""

    name: str
    data: np.ndarray  # complex [n_win], spectrum points inside the fit window
    weight: float
    groups: tuple[int, ...]


@dataclass
class Problem:
    """Everything the solver needs; built once per fit by gabaapp.lcm.fit."""

    time_s: np.ndarray  # [N]
    window: np.ndarray  # int indices of the fit window in the fftshift-ed spectrum
    ppm: np.ndarray  # [n_win]
    ppm_ref: float  # first-order phase pivot
    columns: np.ndarray  # complex [n_groups, n_amp, N] basis FIDs, zeros where absent
    observations: tuple[Observation, ...]
    baseline: np.ndarray | None  # real [n_win, n_spl] B-spline design, or None
    penalty: np.ndarray | None  # real [n_pen, n_spl] = sqrt(weight) * D2
    # Free line shape (LCModel-style, Provencher 1993): a real kernel on the spectral grid,
    # k_j at offsets j * df (j = -h..h), area 1, shared by all groups and columns. Its free
    # values are the k_j for j != 0 (k_0 = 1 - sum of them), appended to theta.
    kernel_offsets_hz: np.ndarray | None = None  # [n_k] offsets j * df of the free k_j
    kernel_penalty: float = 0.0  # weight of the squared second differences of the kernel
    # Individual shifts (LCModel-style, Provencher 1993): column k (where the mask is True)
    # is also shifted by its own d_k Hz, the same in every group, with a Gaussian prior of SD
    # `column_shift_sd_hz` about 0 (rows d_k / sd join the residual: the fit is the MAP one
    # when the weights are 1 / noise SD). The d_k follow the kernel values in theta.
    column_shift_mask: np.ndarray | None = None  # bool [n_amp]
    column_shift_sd_hz: float | np.ndarray = 1.0  # prior SD, one or one per column [n_amp]
    # With a positive SD the same columns also get their own extra Lorentzian width e_k Hz
    # (B_k(t) exp(-pi e_k t), as LCModel's individual T2 broadening), Gaussian prior about 0;
    # the e_k follow the d_k in theta.
    column_width_sd_hz: float = 0.0
    # Soft constraints on amplitudes (LCModel-style prior knowledge): rows C a (target 0),
    # already divided by their prior SD, appended to the amplitude least squares. They do not
    # depend on theta or the baseline.
    amplitude_prior: np.ndarray | None = None  # real [n_prior, n_amp]

    def __post_init__(self) -> None:
        self.n_groups, self.n_amp, _ = self.columns.shape
        self.n_win = self.window.size
        self.n_rows = 2 * self.n_win * len(self.observations)  # real then imaginary parts
        # The window's points in the unshifted FFT output: fftshift(X)[i] = X[(i - N//2) % N],
        # so gathering them skips the fftshift copy of every evaluation.
        n_t = self.time_s.size
        self.fft_take = (self.window - n_t // 2) % n_t
        self.time_step = _uniform_step(self.time_s)
        self._build_baseline()
        self._build_kernel()
        self._build_column_shifts()

    # ----- free line-shape kernel --------------------------------------------------------------
    def _build_kernel(self) -> None:
        offsets = self.kernel_offsets_hz
        self.n_k = 0 if offsets is None else offsets.size
        self.k_start = N_SHARED + N_PER_GROUP * self.n_groups
        mask = self.column_shift_mask
        self.shifted = np.zeros(0, int) if mask is None else np.flatnonzero(mask)
        self.n_cs = self.shifted.size
        self.cs_start = self.k_start + self.n_k
        self.n_cw = self.n_cs if self.column_width_sd_hz > 0 else 0
        self.cw_start = self.cs_start + self.n_cs
        self.n_theta = self.cw_start + self.n_cw
        self.kernel_take = None  # set below when the kernel offsets are on the DFT grid
        if not self.n_k:
            self.kernel_phasors = np.zeros((0, self.time_s.size), complex)
            self.kernel_pen_matrix = np.zeros((0, self.n_theta))
            self.kernel_pen_offset = np.zeros(0)
            return
        # A shift by j bins of the DFT grid is the exact product of the FID with
        # exp(2 pi i j df t): the convolution is exact (circular, far from the window edges).
        # Line shape L(t) = sum_j k_j exp(2 pi i f_j t) = 1 + sum_{j != 0} k_j (phasor_j - 1).
        self.kernel_phasors = _exponentials(2j * np.pi * offsets, self.time_s, self.time_step) - 1.0
        # On a uniform time grid from 0 with offsets on the DFT grid, FFT(x phasor_j)[k] is
        # FFT(x)[k - j] (the shift theorem, exact for the DFT): the kernel derivatives are
        # shifted copies of one FFT instead of one FFT each. None: not on the grid.
        t, n_t = self.time_s, self.time_s.size
        if n_t > 1 and t[0] == 0.0:
            dt = t[1] - t[0]
            bins = offsets * n_t * dt
            uniform = np.allclose(np.diff(t), dt, rtol=1e-9, atol=0.0)
            if uniform and np.allclose(bins, np.round(bins), rtol=0.0, atol=1e-9):
                j = np.round(bins).astype(int)
                self.kernel_take = (self.fft_take[None, :] - j[:, None]) % n_t
        # Second differences of the full kernel padded with a zero at each end (it must fade
        # out): D2 E x, with E mapping free values x to k - e_0 (k_0 = 1 - sum x).
        order = np.argsort(offsets)
        n_full = self.n_k + 1
        centre = int(np.searchsorted(offsets[order], 0.0))
        e_map = np.zeros((n_full + 2, self.n_k))
        for col, j in enumerate(order):
            row = 1 + (col if col < centre else col + 1)
            e_map[row, j] = 1.0
            e_map[1 + centre, j] = -1.0
        d2 = np.diff(np.eye(n_full + 2), n=2, axis=0)
        scale = math.sqrt(self.kernel_penalty)
        # (Pinning the deviation's first/second moments to zero, to keep the kernel apart
        # from the shift and widths, lowered the CRLBs a little but biased fits of lines
        # with a real asymmetric shoulder: not done.)
        rows = d2 @ e_map
        self.kernel_pen_matrix = np.zeros((rows.shape[0], self.n_theta))
        self.kernel_pen_matrix[:, self.k_start : self.cs_start] = scale * rows
        # Only the deviation from the delta (x) is penalised: a pure Voigt line costs nothing,
        # so Voigt data stay unbiased, and the deviation must be smooth across k_0 too.
        self.kernel_pen_offset = np.zeros(rows.shape[0])

    def _build_column_shifts(self) -> None:
        """Append the prior rows d_k / sd (and e_k / sd_w) to the penalty rows on theta.

        They join kernel_pen_matrix, which holds every penalty row on theta, so that the
        residual, the VarPro Jacobian and the CRLB (gabaapp.lcm.crlb) treat them alike.
        """
        if not self.n_cs:
            return
        n_new = self.n_cs + self.n_cw
        rows = np.zeros((n_new, self.n_theta))
        sd = np.broadcast_to(np.asarray(self.column_shift_sd_hz, float), (self.n_amp,))
        self.shift_sd_hz = sd[self.shifted]
        prior_sd = np.concatenate([self.shift_sd_hz, np.full(self.n_cw, self.column_width_sd_hz)])
        rows[np.arange(n_new), self.cs_start + np.arange(n_new)] = 1.0 / prior_sd
        self.kernel_pen_matrix = np.vstack([self.kernel_pen_matrix, rows])
        self.kernel_pen_offset = np.concatenate([self.kernel_pen_offset, np.zeros(n_new)])

    @property
    def n_pen(self) -> int:
        """Number of penalty rows on theta (free line shape and individual-shift priors)."""
        return self.kernel_pen_matrix.shape[0]

    def lineshape(self, theta: np.ndarray) -> np.ndarray:
        """Return the line-shape factor L(t) [N] multiplying every basis FID (1: no kernel)."""
        if not self.n_k:
            return np.ones(self.time_s.size, complex)
        return 1.0 + theta[self.k_start : self.cs_start] @ self.kernel_phasors

    def column_shifts_hz(self, theta: np.ndarray) -> np.ndarray:
        """Return the individual shift (Hz) of every amplitude column [n_amp] (0: none)."""
        out = np.zeros(self.n_amp)
        out[self.shifted] = theta[self.cs_start : self.cs_start + self.n_cs]
        return out

    def column_widths_hz(self, theta: np.ndarray) -> np.ndarray:
        """Return the individual extra Lorentzian width (Hz) of every column [n_amp] (0: none)."""
        out = np.zeros(self.n_amp)
        if self.n_cw:
            out[self.shifted] = theta[self.cw_start : self.cw_start + self.n_cw]
        return out

    def _shifted_columns(self, g: int, theta: np.ndarray) -> np.ndarray:
        """Return group g's basis FIDs [n_amp, N] with their individual shifts (and widths)."""
        if not self.n_cs:
            return self.columns[g]
        rates = 2j * np.pi * theta[self.cs_start : self.cs_start + self.n_cs]
        if self.n_cw:
            rates = rates - np.pi * theta[self.cw_start : self.cw_start + self.n_cw]
        cache = getattr(self, "_shift_cache", None)  # solver calls repeat the same theta
        if cache is None or cache[0] != g or not np.array_equal(cache[1], rates):
            if self.n_cs == self.n_amp:
                cols = self.columns[g] * _exponentials(rates, self.time_s, self.time_step)
            else:
                cols = self.columns[g].copy()
                cols[self.shifted] *= _exponentials(rates, self.time_s, self.time_step)
            self._shift_cache = cache = (g, rates.copy(), cols)
        return cache[2]

    def kernel(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (offsets_hz ascending, kernel values, area 1) of the free line shape."""
        if not self.n_k:
            return np.zeros(1), np.ones(1)
        x = theta[self.k_start : self.cs_start]
        off = np.append(self.kernel_offsets_hz, 0.0)
        val = np.append(x, 1.0 - x.sum())
        order = np.argsort(off)
        return off[order], val[order]

    def kernel_penalty_residual(self, theta: np.ndarray) -> np.ndarray:
        """Return the kernel's penalty rows sqrt(lambda) D2 k (empty without a kernel)."""
        return self.kernel_pen_offset + self.kernel_pen_matrix @ theta

    # ----- baseline (independent of the nonlinear parameters: factor once) -------------------
    def _build_baseline(self) -> None:
        if self.baseline is None:
            self.n_bl = 0
            self.z_data = np.zeros((self.n_rows, 0))
            self.z_pen = np.zeros((0, 0))
            self.q_data = np.zeros((self.n_rows, 0))
            self.q_pen = np.zeros((0, 0))
            self.r_bl = np.zeros((0, 0))
            return
        n_spl = self.baseline.shape[1]
        # coefficient sets: (group, real) and (group, imag); baseline_g = B (c_re + i c_im)
        self.n_bl = 2 * n_spl * self.n_groups
        z = np.zeros((self.n_rows, self.n_bl))
        for o, obs in enumerate(self.observations):
            re = slice(2 * o * self.n_win, (2 * o + 1) * self.n_win)
            im = slice((2 * o + 1) * self.n_win, (2 * o + 2) * self.n_win)
            for g in obs.groups:
                z[re, (2 * g) * n_spl : (2 * g + 1) * n_spl] = obs.weight * self.baseline
                z[im, (2 * g + 1) * n_spl : (2 * g + 2) * n_spl] = obs.weight * self.baseline
        pen = np.kron(np.eye(2 * self.n_groups), self.penalty)
        full = np.vstack([z, pen])
        q, r = np.linalg.qr(full)
        self.z_data, self.z_pen = z, pen
        self.q_data, self.q_pen = q[: self.n_rows], q[self.n_rows :]
        self.r_bl = r
        self.n_spl = n_spl
        # One group, one observation: the real and imaginary rows have their own, identical
        # baseline blocks, so the projector is block-diagonal; `project` applies it per block
        # from the QR of one block (half the work, the same projector).
        self.q_block = None
        if self.n_groups == 1 and len(self.observations) == 1:
            w = self.observations[0].weight
            q1, _ = np.linalg.qr(np.vstack([w * self.baseline, self.penalty]))
            self.q_block = (q1[: self.n_win], q1[self.n_win :])

    # ----- forward model ---------------------------------------------------------------------
    def _decay(self, theta: np.ndarray, g: int) -> np.ndarray:
        """Return group g's Voigt decay and shift factor exp(...) [N] (without the kernel)."""
        lorentz_hz, gauss_var = theta[0], theta[1]
        shift_hz = theta[N_SHARED + N_PER_GROUP * g]
        t = self.time_s
        return np.exp(
            (2j * np.pi * shift_hz - np.pi * lorentz_hz) * t
            - (np.pi**2 / _FOUR_LN2) * gauss_var * t**2
        )

    def _time_columns(self, theta: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Return per group (columns x decay x line shape [n_amp, N], their spectra in the
        window before the phase [n_amp, n_win], decay [N], shifted columns [n_amp, N]).

        Cached for the last theta: the solver asks for the Jacobian at the point whose
        residual it has just evaluated, and the derivatives reuse these products.
        """
        cache = getattr(self, "_col_cache", None)
        if cache is not None and np.array_equal(cache[0], theta):
            return cache[1]
        shape = self.lineshape(theta) if self.n_k else None
        out = []
        for g in range(self.n_groups):
            decay = self._decay(theta, g)
            cols = self._shifted_columns(g, theta)
            prod = cols * (decay if shape is None else decay * shape)
            out.append((prod, np.fft.fft(prod, axis=-1)[:, self.fft_take], decay, cols))
        self._col_cache = (theta.copy(), out)
        return out

    def _phase(self, theta: np.ndarray, g: int) -> np.ndarray:
        ph0, ph1 = theta[N_SHARED + N_PER_GROUP * g + 1 : N_SHARED + N_PER_GROUP * (g + 1)]
        return np.exp(1j * (ph0 + ph1 * (self.ppm - self.ppm_ref)))

    def group_columns(self, theta: np.ndarray) -> np.ndarray:
        """Return complex [n_groups, n_amp, n_win]: each basis column's spectrum in the window."""
        out = np.empty((self.n_groups, self.n_amp, self.n_win), complex)
        for g, (_, spec, _, _) in enumerate(self._time_columns(theta)):
            out[g] = spec * self._phase(theta, g)
        return out

    def model_derivatives(self, theta: np.ndarray, amps: np.ndarray) -> np.ndarray:
        """Return d(model)/d(theta) [n_rows, n_theta] (weighted, Re then Im) at fixed `amps`.

        Analytic: the Voigt/shift factor multiplies the FID, so each derivative is the FFT of
        the combined FID times -pi t, -pi^2 t^2 / (4 ln 2) or 2 pi i t; phases multiply by i.
        """
        if self.n_cs:
            return self._derivatives_by_column(theta, amps)
        lorentz_hz, gauss_var = theta[0], theta[1]
        t = self.time_s
        n_theta = self.n_theta
        shape = self.lineshape(theta)
        # per group: complex [n_theta, n_win] derivative of that group's spectrum
        dg = np.zeros((self.n_groups, n_theta, self.n_win), complex)
        for g in range(self.n_groups):
            base = N_SHARED + N_PER_GROUP * g
            shift_hz, ph0, ph1 = theta[base : base + N_PER_GROUP]
            decay = np.exp(
                (2j * np.pi * shift_hz - np.pi * lorentz_hz) * t
                - (np.pi**2 / _FOUR_LN2) * gauss_var * t**2
            )
            cols = self._shifted_columns(g, theta)
            plain = (amps @ cols) * decay
            sig = plain * shape
            stack = np.stack(
                [sig, -np.pi * t * sig, -(np.pi**2 / _FOUR_LN2) * t**2 * sig, 2j * np.pi * t * sig]
            )
            by_shift = self.n_k and self.kernel_take is not None
            if by_shift:  # d L / d x_j = phasor_j - 1: from FFT(plain), shifted (see above)
                stack = np.concatenate([stack, plain[None]])
            elif self.n_k:
                stack = np.concatenate([stack, plain * self.kernel_phasors])
            if self.n_cs:  # d/d d_k (d/d e_k): column k alone, times 2 pi i t (-pi t)
                own = amps[self.shifted, None] * cols[self.shifted] * (decay * shape)
                stack = np.concatenate([stack, 2j * np.pi * t * own])
                if self.n_cw:
                    stack = np.concatenate([stack, -np.pi * t * own])
            full = np.fft.fft(stack, axis=-1)
            spec = full[:, self.fft_take]
            if by_shift:
                f_plain = full[4]
                kern = f_plain[self.kernel_take] - spec[4]
                spec = np.concatenate([spec[:4], kern, spec[5:]])
            rel_ppm = self.ppm - self.ppm_ref
            spec *= np.exp(1j * (ph0 + ph1 * rel_ppm))
            model = spec[0]
            dg[g, 0], dg[g, 1], dg[g, base] = spec[1], spec[2], spec[3]
            dg[g, base + 1] = 1j * model
            dg[g, base + 2] = 1j * rel_ppm * model
            dg[g, self.k_start : self.cs_start] = spec[4 : 4 + self.n_k]
            dg[g, self.cs_start :] = spec[4 + self.n_k :]  # shifts, then widths
        return self._stack_observations(dg)

    def _derivatives_by_column(self, theta: np.ndarray, amps: np.ndarray) -> np.ndarray:
        """`model_derivatives` with individual shifts: from the FFTs of t x each column.

        Every column k has its own shift, so d/d d_k needs FFT(t C_k) (C_k: column x decay
        x line shape) anyway; the common shift and Lorentzian width derivatives are the
        amplitude-weighted sums of those same spectra (FFT is linear), the model is the sum of
        the cached column spectra, and the kernel derivatives are shifted copies of
        FFT(sum_k a_k B_k x decay) (see `_build_kernel`). The Gaussian width needs one more
        FFT (of t^2 x the signal). Same derivatives, n_amp + 2 FFTs instead of n_amp + n_k + 4.
        """
        t = self.time_s
        n_theta = self.n_theta
        by_shift = self.n_k and self.kernel_take is not None
        rel_ppm = self.ppm - self.ppm_ref
        dg = np.zeros((self.n_groups, n_theta, self.n_win), complex)
        n_extra = 2 if by_shift else 1 + self.n_k
        stack = np.empty((self.n_amp + n_extra, t.size), complex)
        for g, (prod, spec_cols, decay, cols) in enumerate(self._time_columns(theta)):
            base = N_SHARED + N_PER_GROUP * g
            np.multiply(prod, t, out=stack[: self.n_amp])
            np.multiply(amps @ prod, -(np.pi**2 / _FOUR_LN2) * t**2, out=stack[self.n_amp])
            if by_shift:
                np.multiply(amps @ cols, decay, out=stack[self.n_amp + 1])
            elif self.n_k:
                stack[self.n_amp + 1 :] = (amps @ cols) * decay * self.kernel_phasors
            full = np.fft.fft(stack, axis=-1)
            spec = full[:, self.fft_take]
            f_t = spec[: self.n_amp]  # FFT(t C_k) in the window
            model = amps @ spec_cols
            ft_sig = amps @ f_t
            d = dg[g]  # before the phase, applied once at the end
            d[0] = -np.pi * ft_sig
            d[1] = spec[self.n_amp]
            d[base] = 2j * np.pi * ft_sig
            d[base + 1] = 1j * model
            d[base + 2] = 1j * rel_ppm * model
            if by_shift:
                f_plain = full[self.n_amp + 1]
                d[self.k_start : self.cs_start] = f_plain[self.kernel_take]
                d[self.k_start : self.cs_start] -= f_plain[self.fft_take]
            elif self.n_k:
                d[self.k_start : self.cs_start] = spec[self.n_amp + 1 :]
            own = amps[self.shifted, None] * f_t[self.shifted]
            np.multiply(own, 2j * np.pi, out=d[self.cs_start : self.cs_start + self.n_cs])
            if self.n_cw:
                np.multiply(own, -np.pi, out=d[self.cw_start : self.cw_start + self.n_cw])
            d *= self._phase(theta, g)
        return self._stack_observations(dg)

    def _stack_observations(self, per_group: np.ndarray) -> np.ndarray:
        """Return the real rows [n_rows, n_cols] (each observation weighted, Re then Im) of
        complex per-group spectra [n_groups, n_cols, n_win] (design columns or derivatives)."""
        out = np.empty((self.n_rows, per_group.shape[1]))
        for o, obs in enumerate(self.observations):
            m = per_group[list(obs.groups)].sum(axis=0).T * obs.weight  # [n_win, n_cols]
            out[2 * o * self.n_win : (2 * o + 1) * self.n_win] = m.real
            out[(2 * o + 1) * self.n_win : (2 * o + 2) * self.n_win] = m.imag
        return out

    def design(self, theta: np.ndarray) -> np.ndarray:
        """Return the real amplitude design matrix [n_rows, n_amp] (weighted, Re then Im)."""
        return self._stack_observations(self.group_columns(theta))

    def target(self) -> np.ndarray:
        """Return the weighted data vector [n_rows] (Re then Im per observation)."""
        parts = []
        for obs in self.observations:
            parts += [obs.weight * obs.data.real, obs.weight * obs.data.imag]
        return np.concatenate(parts)

    # ----- variable projection ---------------------------------------------------------------
    def project(self, x_data: np.ndarray) -> np.ndarray:
        """Return P [x; 0] (penalty rows appended), P = I - Q Q^T the baseline-free projector."""
        if self.q_block is not None:
            qd, qp = self.q_block
            parts = (x_data[: self.n_win], x_data[self.n_win :])
            coefs = [qd.T @ x for x in parts]
            tops = [x - qd @ c for x, c in zip(parts, coefs, strict=True)]
            return np.concatenate(tops + [-(qp @ c) for c in coefs], axis=0)
        coef = self.q_data.T @ x_data
        top = x_data - self.q_data @ coef
        bottom = -(self.q_pen @ coef)
        return np.concatenate([top, bottom], axis=0)

    def solve_linear(self, theta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (amplitudes >= 0, projected residual) for nonlinear parameters `theta`."""
        pa = self.project(self.design(theta))
        py = self._projected_target(y)
        if self.amplitude_prior is not None:
            pa = np.vstack([pa, self.amplitude_prior])
            py = np.concatenate([py, np.zeros(self.amplitude_prior.shape[0])])
        # NNLS on the small normal-equation factor: same minimiser, n_amp x n_amp work.
        amps, self._last_qr = _nnls_small(pa, py)
        self.last_projected_design = pa
        res = py - pa @ amps
        if self.n_pen:  # theta penalties do not involve amplitudes or baseline
            res = np.concatenate([res, self.kernel_penalty_residual(theta)])
        return amps, res

    def varpro_jacobian(self, theta: np.ndarray, amps: np.ndarray) -> np.ndarray:
        """Return Kaufman's Jacobian [n_rows + n_pen, n_theta] of the projected residual.

        J = -P_perp dM/dtheta a, P_perp projecting out the baseline and the amplitude columns
        that are free (a > 0) at the last `solve_linear` (Kaufman, BIT 15:49, 1975); the
        dropped term is small near the solution.
        """
        d = self.project(self.model_derivatives(theta, amps))
        if self.amplitude_prior is not None:  # prior rows do not depend on theta
            d = np.vstack([d, np.zeros((self.amplitude_prior.shape[0], d.shape[1]))])
        active = amps > 0
        if active.any():
            # Q of the active columns from the last solve's QR (pa = Q R): pa[:, S] =
            # Q R[:, S] = (Q Q2) R2 with R[:, S] = Q2 R2, a small QR instead of a tall one.
            q, r = self._last_qr
            if not active.all():
                q2, _ = np.linalg.qr(r[:, active])
                q = q @ q2
            d -= q @ (q.T @ d)
        np.negative(d, out=d)
        if self.n_pen:
            return np.vstack([d, self.kernel_pen_matrix])
        return d

    def _projected_target(self, y: np.ndarray) -> np.ndarray:
        # y is fixed during a fit: project it once
        cached = getattr(self, "_py_cache", None)
        if cached is None or cached[0] is not y:
            self._py_cache = (y, self.project(y))
        return self._py_cache[1]

    def complex_fit(self, theta: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Return (cost, phase) of a fit with free complex amplitudes, for starting values.

        Unconstrained complex amplitudes alpha_k = a_k exp(i phi) are fitted (baseline
        projected out): the cost does not depend on the zero-order phase, so it ranks shifts
        and widths alone; phi is the phase of the signal-weighted sum of the alpha_k, to be
        added to `theta`'s phase.
        """
        cols = self.group_columns(theta)
        a = np.zeros((self.n_rows, 2 * self.n_amp))
        for o, obs in enumerate(self.observations):
            m = cols[list(obs.groups)].sum(axis=0).T * obs.weight
            re = slice(2 * o * self.n_win, (2 * o + 1) * self.n_win)
            im = slice((2 * o + 1) * self.n_win, (2 * o + 2) * self.n_win)
            # real-stacked complex coefficients: [Re; Im] x [alpha_re, alpha_im]
            a[re, : self.n_amp], a[re, self.n_amp :] = m.real, -m.imag
            a[im, : self.n_amp], a[im, self.n_amp :] = m.imag, m.real
        pa, py = self.project(a), self._projected_target(y)
        coef, *_ = np.linalg.lstsq(pa, py, rcond=None)
        res = py - pa @ coef
        alpha = coef[: self.n_amp] + 1j * coef[self.n_amp :]
        energy = np.sum(np.abs(cols) ** 2, axis=(0, 2))
        return float(res @ res), float(np.angle(np.sum(alpha * np.abs(alpha) * energy)))

    def baseline_coefficients(self, theta: np.ndarray, amps: np.ndarray, y: np.ndarray):
        """Return the baseline coefficients [n_bl] that go with `theta` and `amps`."""
        if self.n_bl == 0:
            return np.zeros(0)
        rhs = self.q_data.T @ (y - self.design(theta) @ amps)
        return np.linalg.solve(self.r_bl, rhs)

    def group_baselines(self, coef: np.ndarray) -> np.ndarray:
        """Return complex [n_groups, n_win] baselines from coefficients (unweighted)."""
        out = np.zeros((self.n_groups, self.n_win), complex)
        if self.n_bl == 0:
            return out
        c = coef.reshape(self.n_groups, 2, self.n_spl)
        for g in range(self.n_groups):
            out[g] = self.baseline @ c[g, 0] + 1j * (self.baseline @ c[g, 1])
        return out


def _uniform_step(time_s: np.ndarray) -> float | None:
    """Return the step of a uniform time grid starting at 0, else None."""
    if time_s.size < 2 or time_s[0] != 0.0:
        return None
    step = time_s[1] - time_s[0]
    return step if np.allclose(np.diff(time_s), step, rtol=1e-9, atol=0.0) else None


def _exponentials(rates: np.ndarray, time_s: np.ndarray, step: float | None) -> np.ndarray:
    """Return exp(r t) [n_r, N] for complex rates r (1/s).

    On a uniform grid from 0 (`step`, see `_uniform_step`), t = (b i + j) step, with b a
    power of 2 near sqrt(N), splits exp(r t) into exp(r b step i) exp(r step j): about
    2 sqrt(N) complex exponentials and one product per point instead of N exponentials (the
    individual shifts need them at every evaluation); relative error ~|r t| eps (~1e-14),
    where the former running product (cumprod) grew as N eps.
    """
    if step is None:
        return np.exp(np.outer(rates, time_s))
    n = time_s.size
    b = 1 << ((n.bit_length() + 1) // 2)  # 64 for N = 2048: 32 x 64 blocks
    n_blocks = -(-n // b)
    fine = np.exp(np.outer(rates * step, np.arange(b)))
    coarse = np.exp(np.outer(rates * (step * b), np.arange(n_blocks)))
    out = (coarse[:, :, None] * fine[:, None, :]).reshape(rates.size, n_blocks * b)
    return out[:, :n]


def _nnls_small(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Return (argmin ||a x - b|| subject to x >= 0, (Q, R) of a), via the R factor of a
    (same minimiser)."""
    q, r = np.linalg.qr(a)
    # ||a x - b||^2 = ||r x - q^T b||^2 + const for any x: a small NNLS problem.
    x, _ = nnls(r, q.T @ b, maxiter=50 * a.shape[1])
    return x, (q, r)
