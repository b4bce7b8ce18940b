using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Scratch that scales with the precision: the metered view's chunks are capped in values (so a
/// float32 chunk, whose vectors apply faster, holds no more vectors than a float64 one), and
/// float32 scratch blocks go to a pool with half the float64 pool's byte cap (the same values).
/// </summary>
public class ScratchPrecisionTests
{
    /// <summary>Records the largest block each precision's inner call receives; y = 2x + shifted x.</summary>
    private sealed class ChunkRecorder(AxisShape shape) : LinearOperator(shape, shape)
    {
        public int Largest64, Largest32, Calls;
        public override bool IsSelfAdjoint => false;
        internal override bool AppliesFloat32Natively => true;
        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) { Largest64 = Math.Max(Largest64, count); Calls++; Shift(x, y, count, false); }
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) { Largest64 = Math.Max(Largest64, count); Calls++; Shift(x, y, count, true); }
        protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) { Largest32 = Math.Max(Largest32, count); Calls++; Shift(x, y, count, false); }
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) { Largest32 = Math.Max(Largest32, count); Calls++; Shift(x, y, count, true); }

        private void Shift<T>(ReadOnlySpan<T> x, Span<T> y, int count, bool adjoint) where T : System.Numerics.INumber<T>
        {
            int n = Domain.Size;
            for (int j = 0; j < count; j++)
                for (int i = 0; i < n; i++)
                    y[j * n + i] = x[j * n + i] + x[j * n + i] + x[j * n + (adjoint ? (i + n - 1) % n : (i + 1) % n)];
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MeteredChunksHoldAtMostTheValueCapInEitherPrecision(bool single)
    {
        // 10 values per vector, a cap of 35 values: at most 3 vectors per inner call, however fast
        // the operator is (its time per vector alone would allow the whole block of 20).
        var shape = new AxisShape(("i", 10));
        var inner = new ChunkRecorder(shape);
        var metered = new MeteredOperator(inner, null, maxChunkElements: 35);
        Assert.Equal(3, metered.MaxChunkVectors(10));
        Assert.Equal(1, metered.MaxChunkVectors(1000)); // a vector larger than the cap still goes alone
        var rng = new Random(3);
        var x = Enumerable.Range(0, 200).Select(_ => rng.NextDouble() - 0.5).ToArray();
        for (int rep = 0; rep < 3; rep++) // later calls size chunks from the measured time
        {
            if (single)
            {
                var xf = x.Select(v => (float)v).ToArray();
                var got = new float[200];
                var want = new float[200];
                metered.ApplyBlock(xf, got, 20);
                new ChunkRecorder(shape).ApplyBlock(xf, want, 20);
                Assert.Equal(want, got);
                metered.ApplyAdjointBlock(xf, got, 20);
                new ChunkRecorder(shape).ApplyAdjointBlock(xf, want, 20);
                Assert.Equal(want, got);
            }
            else
            {
                var got = new double[200];
                var want = new double[200];
                metered.ApplyBlock(x, got, 20);
                new ChunkRecorder(shape).ApplyBlock(x, want, 20);
                Assert.Equal(want, got);
                metered.ApplyAdjointBlock(x, got, 20);
                new ChunkRecorder(shape).ApplyAdjointBlock(x, want, 20);
                Assert.Equal(want, got);
            }
        }
        Assert.Equal(single ? 0 : 3, inner.Largest64);
        Assert.Equal(single ? 3 : 0, inner.Largest32);
        Assert.Equal(6L * 20, metered.Applications);
    }

    [Fact]
    public void MeteredChunksDefaultToTheScratchBlockCap()
    {
        var metered = new MeteredOperator(new ChunkRecorder(new AxisShape(("i", 4))), null);
        Assert.Equal(MemoryBudget.ScratchBlockElements, metered.MaxChunkElements);
        Assert.Equal(6, metered.MaxChunkVectors(614_400)); // 32·100·192 transformer states: 4 Mi / 614 400
    }

    [Fact]
    public void Float32ScratchGoesToAPoolWithHalfTheByteCap()
    {
        // Same values retained as the float64 pool, in half the bytes.
        Assert.Equal(MemoryBudget.ScratchPoolBytes / 2, ScratchPool.Float32Shared.CapacityBytes);
        Assert.Equal(MemoryBudget.ScratchPoolBytes, ScratchPool.Shared.CapacityBytes);
        Assert.NotSame(ScratchPool.Shared, ScratchPool.Float32Shared);
        using (var b = new Float32Buffer(10)) Assert.Same(ScratchPool.Float32Shared, b.Pool);

        // A large float32 block's storage goes back to the pool it came from (a private one here:
        // the shared pools are read by parallel tests).
        var pool = new ScratchPool(1L << 30);
        long floats = 2L * ScratchPool.SmallLength + 10;
        var block = new Float32Buffer(floats, pool);
        Assert.Equal(floats, block.Span.Length);
        Assert.Equal(0, pool.RetainedBytes);
        block.Dispose();
        Assert.Equal(4L * floats, pool.RetainedBytes);
    }
}
