using GlobalNtk.Dense;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

public class NtkOperatorTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void IdentitiesHoldOnTinyRnn(bool jointSite, bool withGain)
    {
        var model = new NtkTinyRnn(hidden: 4, inputs: 2, leak: 0.7, seed: 3, jointSite: jointSite, withGain: withGain);
        var x = NtkTinyRnn.RandomInputs(3, 5, 2, seed: 4);
        NtkChecks.All(model.Linearize(x), model.DenseWholeJacobian(x), seed: 11);
    }

    [Fact]
    public void KroneckerKHandlesParametersOutsideSites()
    {
        var model = new NtkTinyRnn(4, 2, 0.5, 5, jointSite: true);
        var ops = new NtkOperators(model.Linearize(NtkTinyRnn.RandomInputs(2, 4, 2, 6)));
        Assert.Equal(4, ((KroneckerKernelOperator)ops.KKronecker).RestParameterCount);   // the gain γ
    }

    [Fact]
    public void NonFiniteInputIsRejectedNamingTheOperator()
    {
        var model = new NtkTinyRnn(3, 2, 0.5, 5, jointSite: true);
        var ops = new NtkOperators(model.Linearize(NtkTinyRnn.RandomInputs(2, 3, 2, 6)));
        var q = new double[ops.NtkS.Domain.Size];
        q[5] = double.NaN;
        var ex = Assert.Throws<NonFiniteException>(() => ops.NtkS.Apply(q));
        Assert.Contains("NTK_S", ex.Message);
        Assert.Throws<GlobalNtk.Operators.ShapeMismatchException>(() => ops.P.Apply(new double[3]));
    }

    [Fact]
    public void NonFiniteStatesAreRejected()
    {
        var model = new NtkTinyRnn(3, 2, 0.5, 5, jointSite: true);
        var x = NtkTinyRnn.RandomInputs(2, 3, 2, 6);
        x.Span[4] = double.NaN;
        var ex = Assert.Throws<NonFiniteException>(() => new NtkOperators(model.Linearize(x)));
        Assert.Contains("states", ex.Message);
    }
}

public class NtkKroneckerChunkingTests
{
    [Fact]
    public void KroneckerKInSmallVectorChunksMatchesGenericK()
    {
        var model = new NtkTinyRnn(4, 2, 0.5, 8, jointSite: false);
        var ops = new NtkOperators(model.Linearize(NtkTinyRnn.RandomInputs(2, 4, 2, 9)));
        int s = ops.K.Domain.Size;
        var q = NtkChecks.Random(5 * s, 10);
        using (KroneckerKernelOperator.SiteBlockBudget.Override(2L * 8 * 4))   // two vectors of an [8 rows, 4] site per chunk
            Assert.True(NtkChecks.RelDiff(ops.KKronecker.ApplyBlock(q, 5), ops.K.ApplyBlock(q, 5)) <= 1e-12);
    }
}
