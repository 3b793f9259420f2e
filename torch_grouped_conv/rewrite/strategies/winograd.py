"""`winograd`: 2D 3x3 stride-1 convolutions by Winograd's minimal filtering,
F(m x m, 3 x 3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016): each m x m output tile is

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A

for the alpha x alpha input tile d (alpha = m + 2) and the 3x3 filter g;
(.) is the elementwise product, summed over input channels: for the
alpha^2 tile positions that sum is one GEMM each, all alpha^2 of them one
linalg.batch_matmul. F(4x4, 3x3) does 36 products per 16 outputs (2.25
per output per channel, vs 9).

Layout, with G groups, Cg = C/G, Fg = F/G, th = ceil(Ho/m), tw = ceil(Wo/m),
T = N*th*tw tiles, P = alpha^2 positions (p = a*alpha + b):
  input  x [N,C,Hp,Wp] (already padded by the conv's padding) -> zero-padded
         high to [N,C,m*th+2,m*tw+2] -> NHWC [N,Hq,Wq,G,Cg];
  V      V_p[g,n,i,j,c] = (B^T d B)[a,b], d[a',b'] = x[n, m*i+a', m*j+b', g, c]:
         all-parallel generics over (g,n,i,j,c) with P results in all (at most
         MAX_RESULTS each), channel innermost, the transform written out as sums (zero coefficients
         skipped, +-1 as adds), stacked to [P*G, T, Cg];
  U      U_p[g,c,f] = (G w[g,f,c] G^T)[a,b] from the 9 taps w[:,:,kh,kw]
         ([G,Fg,Cg] each): generics over (g,c,f) with P results in all, stacked to
         [P*G, Cg, Fg]. The weight is a constant in a compiled model: IREE
         evaluates this at compile time;
  M      = batch_matmul(V, U): [P*G, T, Fg];
  Y      Y_uv[g,n,i,j,f] = (A^T M A)[u,v] over the P slices M_p [G,N,th,tw,Fg]:
         one generic over (g,n,i,j,f) with m^2 results, stacked to
         [m,m,G,N,th,tw,Fg] -> transposed to [N,G,Fg,th,m,tw,m] -> [N,F,m*th,m*tw]
         -> cropped to [N,F,Ho,Wo] and added to the accumulator.
Each transform L d R^T is separable: s = L d for a chunk of L's rows, then s R^T.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import add_tensors, element_type_of, extract, reshape, shape, transpose
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.strategies.strategy import Coverage, Strategy, register

Matrix = tuple[tuple[Fraction, ...], ...]
KERNEL = 3
# Results per transform generic: IREE 3.13's llvm-cpu dispatches take at most
# 32 bindings (inputs + results; "binding count 37 > 32" with all 36 of F(4,3)'s
# positions in one generic), so the positions are split by transform row.
MAX_RESULTS = 24


def matrix(rows: Sequence[Sequence[int | str]]) -> Matrix:
    return tuple(tuple(Fraction(v) for v in row) for row in rows)


@dataclass(frozen=True)
class Transform:
    """F(m x m, 3 x 3): B^T [alpha, alpha], G [alpha, 3], A^T [m, alpha], alpha = m + 2."""

    m: int
    bt: Matrix
    g: Matrix
    at: Matrix

    @property
    def alpha(self) -> int:
        return self.m + KERNEL - 1


# Interpolation points 0, 1, -1, 1/2, -2 and infinity (the matrices follow from
# them, Toom-Cook as in Lavin & Gray). Lavin's 0, +-1, +-2 give a max f32 error
# about 4x larger on 64-channel tiles (simulated: 1.2e-5 vs 3.0e-6; direct
# summation 2.6e-7), over the suite's f32 atol of 1e-5 on resnet50's
# 64ch@56^2 conv; with these every measured shape stays within it (docs/design.md, "Winograd").
F4 = Transform(
    m=4,
    bt=matrix([[1, "-3/2", -2, "3/2", 1, 0], [0, -1, "1/2", "5/2", 1, 0], [0, 1, "-5/2", "1/2", 1, 0],
               [0, -2, -1, 2, 1, 0], [0, "1/2", -1, "-1/2", 1, 0], [0, 1, "-3/2", -2, "3/2", 1]]),
    g=matrix([[1, 0, 0], ["1/3", "1/3", "1/3"], ["-1/3", "1/3", "-1/3"],
              ["-16/15", "-8/15", "-4/15"], ["1/15", "-2/15", "4/15"], [0, 0, 1]]),
    at=matrix([[1, 1, 1, 1, 1, 0], [0, 1, -1, "1/2", -2, 0], [0, 1, 1, "1/4", 4, 0], [0, 1, -1, "1/8", -8, 1]]),
)


def transform_for(plan: ConvPlan) -> Transform:
    """F(4x4, 3x3) everywhere: within the suite's f32 tolerance of an f64
    computation on every tested and benchmarked shape (docs/design.md, "Winograd")."""
    return F4


def decline_winograd(plan: ConvPlan) -> str | None:
    """3x3 kernels, stride 1, dilation 1 only (2D forward f32/f64 static: `Coverage`)."""
    spec = plan.spec
    if tuple(plan.kernel) != (KERNEL, KERNEL):
        return f"kernel {list(plan.kernel)} (it covers 3x3)"
    if any(s != 1 for s in spec.stride):
        return f"stride {list(spec.stride)} (it covers stride 1)"
    if any(d != 1 for d in spec.dilation):
        return f"dilation {list(spec.dilation)} (it covers dilation 1)"
    return None


# ----------------------------------------------------------------------------
# The transforms as explicit sums (built inside a generic's body).


def combine(terms: Sequence[tuple[Fraction, ir.Value]]) -> ir.Value:
    """sum c * v over the terms with c != 0: +-1 as adds/subtracts, others one
    mulf by a constant; a positive term first where there is one."""
    live = sorted(((c, v) for c, v in terms if c != 0), key=lambda t: t[0] < 0)
    assert live, "every transform row has a nonzero coefficient"
    first_c, first = live[0]
    total = first if abs(first_c) == 1 else scale(first, abs(first_c))
    if first_c < 0:
        total = arith.negf(total)
    for c, v in live[1:]:
        part = v if abs(c) == 1 else scale(v, abs(c))
        total = arith.addf(total, part) if c > 0 else arith.subf(total, part)
    return total


def scale(v: ir.Value, c: Fraction) -> ir.Value:
    return arith.mulf(v, arith.constant(v.type, float(c)))


def sandwich(left: Matrix, d: Sequence[Sequence[ir.Value]], right: Matrix, rows: range) -> list[list[ir.Value]]:
    """Rows `rows` of left @ d @ right^T, the left product first:
    s[p][b] = sum_a left[p][a] d[a][b], then out[p][q] = sum_b s[p][b] right[q][b]."""
    s = [[combine([(left[p][a], d[a][b]) for a in range(len(d))]) for b in range(len(d[0]))] for p in rows]
    return [[combine([(right[q][b], row[b]) for b in range(len(row))]) for q in range(len(right))] for row in s]


def row_chunks(rows: int, width: int) -> list[range]:
    """Split `rows` result rows of `width` values each into even chunks of at
    most `MAX_RESULTS` values: one generic per chunk."""
    count = -(-rows * width // MAX_RESULTS)
    per = -(-rows // count)
    return [range(start, min(start + per, rows)) for start in range(0, rows, per)]


def flat(values: Sequence[Sequence[ir.Value]]) -> list[ir.Value]:
    return [v for row in values for v in row]


def grid(values: Sequence[ir.Value], side: int) -> list[list[ir.Value]]:
    return [list(values[r * side:(r + 1) * side]) for r in range(side)]


# ----------------------------------------------------------------------------
# IR.


def multi_generic(inputs: Sequence[ir.Value], in_maps: Sequence[ir.AffineMap], out_sizes: Sequence[int], count: int,
                  body: Callable[[list[ir.Value]], list[ir.Value]]) -> list[ir.Value]:
    """An all-parallel linalg.generic over `out_sizes` with `count` results
    (identity maps); `body(input block args)` returns the `count` values to yield."""
    elem = element_type_of(inputs[0])
    inits = [tensor.empty(list(out_sizes), elem) for _ in range(count)]
    rank = len(out_sizes)
    maps = [*in_maps, *[ir.AffineMap.get_identity(rank)] * count]
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    op = linalg.GenericOp([i.type for i in inits], list(inputs), inits,
                          ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]), ir.ArrayAttr.get([parallel] * rank))
    block = op.regions[0].blocks.append(*[elem] * (len(inputs) + count))
    with ir.InsertionPoint(block):
        linalg.YieldOp(body(list(block.arguments)[:len(inputs)]))
    return list(op.results)


def stack(values: Sequence[ir.Value]) -> ir.Value:
    """[k, *shape] from k tensors of one shape (expand each to [1, *shape], concat)."""
    dims = shape(values[0])
    lead = [[0, 1], *([i] for i in range(2, len(dims) + 1))]
    parts = [reshape(v, lead, [1, *dims]) for v in values]
    return tensor.concat(builders.tensor_type([len(values), *dims], element_type_of(values[0])), 0, parts)


def transformed(source: ir.Value, maps: Sequence[ir.AffineMap], out_sizes: Sequence[int], left: Matrix,
                right: Matrix, side: int) -> list[ir.Value]:
    """The `side` x `side` values read from `source` through `maps` (row-major),
    transformed to left @ d @ right^T: len(left) * len(right) tensors of
    `out_sizes`, row-major, from one generic per chunk of rows (`row_chunks`)."""
    def body(rows: range) -> Callable[[list[ir.Value]], list[ir.Value]]:
        return lambda d: flat(sandwich(left, grid(d, side), right, rows))

    results: list[ir.Value] = []
    for rows in row_chunks(len(left), len(right)):
        results += multi_generic([source] * len(maps), maps, out_sizes, len(rows) * len(right), body(rows))
    return results


def input_transform(xq: ir.Value, t: Transform, tiles: tuple[int, int]) -> ir.Value:
    """xq [N,Hq,Wq,G,Cg] -> V [P*G, N*th*tw, Cg] (module docstring)."""
    n, _, _, groups, c_group = shape(xq)
    th, tw = tiles
    g, nd, i, j, c = builders.dim_exprs(5)
    alpha, m = t.alpha, t.m
    maps = [builders.affine_map(5, [nd, i * m + a, j * m + b, g, c]) for a in range(alpha) for b in range(alpha)]
    v = stack(transformed(xq, maps, [groups, n, th, tw, c_group], t.bt, t.bt, alpha))  # [P,G,N,th,tw,Cg]
    return reshape(v, [[0, 1], [2, 3, 4], [5]], [alpha * alpha * groups, n * th * tw, c_group])


def filter_transform(w: ir.Value, t: Transform, groups: int) -> ir.Value:
    """w [F,Cg,3,3] -> U [P*G, Cg, Fg] (module docstring)."""
    f, c_group = shape(w)[:2]
    f_group = f // groups
    wg = builders.expand(w, 0, groups)  # [G,Fg,Cg,3,3]
    g, c, fd = builders.dim_exprs(3)
    # loops (g, c, f) read tap (kh, kw) of w[g, f, c]
    maps = [builders.affine_map(3, [g, fd, c, ir.AffineConstantExpr.get(kh), ir.AffineConstantExpr.get(kw)])
            for kh in range(KERNEL) for kw in range(KERNEL)]
    u = stack(transformed(wg, maps, [groups, c_group, f_group], t.g, t.g, KERNEL))  # [P,G,Cg,Fg]
    return reshape(u, [[0, 1], [2], [3]], [t.alpha * t.alpha * groups, c_group, f_group])


def output_transform(mm: ir.Value, t: Transform, groups: int, n: int, tiles: tuple[int, int]) -> ir.Value:
    """M [P*G, T, Fg] -> [N, F, m*th, m*tw] (module docstring)."""
    count, f_group, (th, tw), m = t.alpha * t.alpha, shape(mm)[2], tiles, t.m
    blocks = reshape(mm, [[0, 1], [2, 3, 4], [5]], [count, groups, n, th, tw, f_group])
    sizes = [groups, n, th, tw, f_group]
    loops = builders.dim_exprs(5)
    maps = [builders.affine_map(5, [ir.AffineConstantExpr.get(p), *loops]) for p in range(count)]
    y = stack(transformed(blocks, maps, sizes, t.at, t.at, t.alpha))  # [m*m,G,N,th,tw,Fg]
    y = reshape(y, [[0, 1], [2], [3], [4], [5], [6]], [m, m, *sizes])  # [u,v,G,N,th,tw,Fg]
    y = transpose(y, (3, 2, 6, 4, 0, 5, 1))  # [N,G,Fg,th,u,tw,v]
    return reshape(y, [[0], [1, 2], [3, 4], [5, 6]], [n, groups * f_group, th * m, tw * m])


def emit_winograd(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """acc + the conv of the padded input x [N,C,Hp,Wp] with w [F,Cg,3,3], by `transform_for(plan)`."""
    t, groups = transform_for(plan), plan.spec.groups
    n, f, ho, wo = shape(acc)
    tiles = (-(-ho // t.m), -(-wo // t.m))
    hp, wp = shape(x)[2:]
    x = builders.pad_spatial(x, [0, 0], [tiles[0] * t.m + 2 - hp, tiles[1] * t.m + 2 - wp])
    nhwc = transpose(x, (0, 2, 3, 1))
    n_, hq, wq, c = shape(nhwc)
    xq = reshape(nhwc, [[0], [1], [2], [3, 4]], [n_, hq, wq, groups, c // groups])
    v = input_transform(xq, t, tiles)
    u = filter_transform(w, t, groups)
    gemm = linalg.batch_matmul(v, u, outs=[builders.init_accumulator([*shape(v)[:2], shape(u)[2]], element_type_of(acc))])
    y = output_transform(gemm, t, groups, n, tiles)
    return add_tensors(acc, extract(y, [0, 0, 0, 0], [n, f, ho, wo], [1] * 4))


WINOGRAD = register(Strategy(
    "winograd",
    emitters={Case.CONV: emit_winograd, Case.GROUPED: emit_winograd},
    coverage=Coverage(),
    decline=decline_winograd,
))
