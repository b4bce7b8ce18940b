using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

public class OperatorAlgebraTests
{
    private static readonly AxisShape S3 = new(("trial", 2), ("time", 3), ("unit", 4)); // 24
    private static readonly AxisShape V5 = AxisShape.Vector(5, "j");
    private static readonly AxisShape V7 = AxisShape.Vector(7, "k");

    public static IEnumerable<object[]> AllOperators()
    {
        var rng = new Random(1);
        var a = RandomDense(rng, S3, V5);                 // 24 -> 5
        var b = RandomDense(rng, V5, V7);                 // 5 -> 7
        var sq = RandomDense(rng, S3, S3);
        var ops = new (string, LinearOperator)[]
        {
            ("identity", LinearOperator.Identity(S3)),
            ("dense", a),
            ("diagonal", new DiagonalOperator(S3, RandomArray(rng, 24))),
            ("composition", a.Then(b)),
            ("composition3", sq.Then(a).Then(b)),
            ("sum", sq + sq.Adjoint),
            ("difference", sq - 2.0 * sq.Adjoint),
            ("scaled", a * 3.5),
            ("negated", -a),
            ("adjoint", a.Adjoint),
            ("gram", a.Gram()),
            ("symmetric part", sq.SymmetricPart()),
            ("kronecker", new KroneckerOperator(RandomDense(rng, AxisShape.Vector(3, "p"), AxisShape.Vector(2, "q")), a)),
            ("kronecker identity left", LinearOperator.Identity(AxisShape.Vector(3, "p")).Kron(a)),
            ("kronecker identity right", a.Kron(LinearOperator.Identity(AxisShape.Vector(3, "p")))),
            ("view", a.View(new AxisShape(("x", 6), ("y", 4)), V5)),
            ("reshape", LinearOperator.Reshape(S3, new AxisShape(("x", 6), ("y", 4)))),
            ("rank one", new RankOneOperator(RandomArray(rng, 5), V5, RandomArray(rng, 24), S3, 0.7)),
            ("projector", RankOneOperator.Projector(RandomArray(rng, 24), S3)),
        };
        return ops.Select(o => new object[] { o.Item1, o.Item2 });
    }

    [Theory]
    [MemberData(nameof(AllOperators))]
    public void AdjointIdentityHolds(string name, LinearOperator op)
    {
        Assert.True(AdjointError(op, 7) <= 1e-12, $"{name}: adjoint error {AdjointError(op, 7)}");
        Assert.True(AdjointError(op.Adjoint, 8) <= 1e-12, $"{name}*: adjoint error");
    }

    [Theory]
    [MemberData(nameof(AllOperators))]
    public void BlockApplyMatchesSingleVectors(string name, LinearOperator op)
    {
        var rng = new Random(3);
        var x = RandomArray(rng, op.Domain.Size * 4);
        var block = op.ApplyBlock(x, 4);
        for (int j = 0; j < 4; j++)
        {
            var single = op.Apply(x.AsSpan(j * op.Domain.Size, op.Domain.Size));
            Assert.True(MaxAbsDiff(single, block.AsSpan(j * op.Range.Size, op.Range.Size)) < 1e-14, name);
        }
    }

    [Fact]
    public void AlgebraMatchesDenseMatrices()
    {
        var rng = new Random(2);
        var a = RandomDense(rng, S3, V5);
        var b = RandomDense(rng, V5, V7);
        var sq = RandomDense(rng, S3, S3);
        double[] A = a.Matrix, B = b.Matrix, Q = sq.Matrix;

        Check(MatMul(B, A, 7, 5, 24), a.Then(b));
        Check(MatMul(B, A, 7, 5, 24), b * a);
        Check(Transpose(A, 5, 24), a.Adjoint);
        Check(MatMul(A, Transpose(A, 5, 24), 5, 24, 5), a.Gram());
        var sum = Q.Zip(Transpose(Q, 24, 24), (x, y) => 2 * x - y).ToArray();
        Check(sum, 2.0 * sq - sq.Adjoint);
        Check(Q.Zip(Transpose(Q, 24, 24), (x, y) => 0.5 * (x + y)).ToArray(), sq.SymmetricPart());
        Check(A.Select(x => -1.5 * x).ToArray(), a * -1.5);
        Check(A, a.View(new AxisShape(("x", 24)), new AxisShape(("y", 5))));

        // Kronecker: (L ⊗ R)[(i,j),(p,q)] = L[i,p]·R[j,q].
        var l = RandomDense(rng, AxisShape.Vector(3, "p"), AxisShape.Vector(2, "q"));
        var kron = l.Kron(a);
        var expected = new double[(2 * 5) * (3 * 24)];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 5; j++) for (int p = 0; p < 3; p++) for (int q = 0; q < 24; q++)
            expected[(i * 5 + j) * 72 + p * 24 + q] = l[i, p] * a[j, q];
        Check(expected, kron);
        Assert.Equal(new AxisShape(("p", 3), ("trial", 2), ("time", 3), ("unit", 4)), kron.Domain);
        Assert.Equal(new AxisShape(("q", 2), ("j", 5)), kron.Range);

        // Rank one and projector.
        var u = RandomArray(rng, 5); var v = RandomArray(rng, 24);
        var outer = new double[5 * 24];
        for (int i = 0; i < 5; i++) for (int j = 0; j < 24; j++) outer[i * 24 + j] = 2 * u[i] * v[j];
        Check(outer, new RankOneOperator(u, V5, v, S3, 2));
        var proj = RankOneOperator.Projector(v, S3).Materialize();
        Check(proj.Matrix, RankOneOperator.Projector(v, S3) * RankOneOperator.Projector(v, S3));
        Assert.Equal(1.0, proj.Trace(), 12);

        Check(Enumerable.Range(0, 24 * 24).Select(i => i / 24 == i % 24 ? 1.0 : 0.0).ToArray(), LinearOperator.Identity(S3));
    }

    [Fact]
    public void Float32BlocksStayFloat32ThroughDiagonalsAndCompositionsOfThem()
    {
        var rng = new Random(6);
        var d1 = new DiagonalOperator(S3, RandomArray(rng, 24));
        var d2 = new DiagonalOperator(S3, RandomArray(rng, 24));
        var dense = RandomDense(rng, S3, S3);
        var x = RandomArray(rng, 24 * 3).Select(v => (float)v).ToArray();

        // A diagonal forms each product in float64 and rounds it once (the float64 diagonal is not rounded first).
        var y1 = new float[x.Length];
        d1.ApplyBlock(x, y1, 3);
        Assert.Equal(x.Select((v, i) => (float)(v * d1.Diagonal[i % 24])).ToArray(), y1);

        // A composition of float32-native factors rounds between them, as each factor's own map does.
        var both = d1.Then(d2);
        Assert.True(ProbeBlock.UsesFloat32(both));
        var y2 = new float[x.Length];
        both.ApplyBlock(x, y2, 3);
        Assert.Equal(y1.Select((v, i) => (float)(v * d2.Diagonal[i % 24])).ToArray(), y2);
        both.ApplyAdjointBlock(x, y2, 3); // d1* ∘ d2*: d2 first
        Assert.Equal(x.Select((v, i) => (float)((float)(v * d2.Diagonal[i % 24]) * d1.Diagonal[i % 24])).ToArray(), y2);

        // With one factor that has no float32 map, the whole composition widens once and rounds once.
        var mixed = d1.Then(dense);
        Assert.False(ProbeBlock.UsesFloat32(mixed));
        var y3 = new float[x.Length];
        mixed.ApplyBlock(x, y3, 3);
        var wide = mixed.ApplyBlock(x.Select(v => (double)v).ToArray(), 3);
        Assert.Equal(wide.Select(v => (float)v).ToArray(), y3);
    }

    private static void Check(double[] expected, LinearOperator op)
    {
        var m = op.Materialize().Matrix;
        Assert.True(MaxAbsDiff(expected, m) <= 1e-12 * Math.Max(1, MaxAbs(expected)), $"{op.Name}: max diff {MaxAbsDiff(expected, m)}");
    }

    [Fact]
    public void ShapeMismatchesNameBothShapes()
    {
        var rng = new Random(4);
        var a = RandomDense(rng, S3, V5);
        var b = RandomDense(rng, V7, V5);
        var ex = Assert.Throws<ShapeMismatchException>(() => a.Then(b));
        Assert.Contains(V5.ToString(), ex.Message);
        Assert.Contains(V7.ToString(), ex.Message);

        ex = Assert.Throws<ShapeMismatchException>(() => a + b);
        Assert.Contains(S3.ToString(), ex.Message);
        Assert.Contains(V7.ToString(), ex.Message);

        ex = Assert.Throws<ShapeMismatchException>(() => a.Apply(new double[23]));
        Assert.Contains(S3.ToString(), ex.Message);

        ex = Assert.Throws<ShapeMismatchException>(() => a.SymmetricPart());
        Assert.Contains(S3.ToString(), ex.Message);
        Assert.Contains(V5.ToString(), ex.Message);

        ex = Assert.Throws<ShapeMismatchException>(() => a.Kron(RandomDense(rng, AxisShape.Vector(2, "time"), V7)));
        Assert.Contains("time", ex.Message);

        Assert.Throws<ShapeMismatchException>(() => a.View(AxisShape.Vector(25), V5));
        Assert.Throws<NonFiniteException>(() => new DenseOperator([1.0, double.NaN], 1, 2));
    }

    [Fact]
    public void MaterializeRefusesLargeOperatorsNamingSizeAndLimit()
    {
        var big = LinearOperator.Identity(AxisShape.Vector(5000));
        var ex = Assert.Throws<OperatorTooLargeException>(() => big.Materialize());
        Assert.Contains("5000 × 5000", ex.Message);
        Assert.Contains("4096 × 4096", ex.Message);
        var ex2 = Assert.Throws<OperatorTooLargeException>(() => LinearOperator.Identity(S3).Materialize(10));
        Assert.Contains("24 × 24", ex2.Message);
        Assert.Contains("10 × 10", ex2.Message);
    }

    [Fact]
    public void AdjointOfAdjointAndSelfAdjointFlags()
    {
        var rng = new Random(5);
        var a = RandomDense(rng, S3, V5);
        Assert.Same(a, a.Adjoint.Adjoint);
        Assert.True(a.Gram().IsSelfAdjoint);
        Assert.True(RandomDense(rng, S3, S3).SymmetricPart().IsSelfAdjoint);
        Assert.False(RandomDense(rng, S3, S3).IsSelfAdjoint);
        Assert.True(a.Gram().Materialize().IsSelfAdjoint);
    }
}
