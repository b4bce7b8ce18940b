using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Tests.Recurrent;
using Xunit;
using GlobalNtk.Dense;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests;

/// <summary>
/// The state maps' step contract, the same for every linearisation: A_k exists for 1 ≤ k &lt; Steps
/// (step 0 depends on the input only); step 0 and step Steps are refused, naming the step and the range.
/// </summary>
public class StepRangeTests
{
    public static TheoryData<string> Linearisations => new()
    {
        "mlp", "mlp-fused", "transformer", "transformer-fused", "gru", "gru-blocks", "lstm-2-layers",
    };

    private static ChainLinearization Linearize(string name)
    {
        switch (name)
        {
            case "mlp" or "mlp-fused":
            {
                var model = MlpModel.Create(inputs: 3, hidden: 5, layers: 3, outputs: 2, Activation.Gelu, seed: 2);
                var x = new Tensor(TestMath.Gaussian(new Random(6), 4 * 3), new AxisShape(("sample", 4), ("input", 3)));
                return name == "mlp" ? model.Linearize(x) : model.LinearizeFused(x);
            }
            case "transformer" or "transformer-fused":
            {
                var config = new TransformerConfig(TransformerInput.Linear, 4, 8, 2, 2, 12, Activation.Gelu, true);
                var model = TransformerModel.Create(config, 2, seed: 3);
                var x = new Tensor(TestMath.Gaussian(new Random(5), 2 * 3 * 4), new AxisShape(("sequence", 2), ("token", 3), ("input", 4)));
                return name == "transformer" ? model.Linearize(x) : model.LinearizeFused(x);
            }
            case "gru" or "gru-blocks":
            {
                var model = RecurrentFloat32Tests.Model("gru");
                var x = RecurrentFloat32Tests.Inputs(model, b: 2, t: 4);
                return name == "gru" ? model.Linearize(x) : model.LinearizeBlocks(x);
            }
            case "lstm-2-layers":
            {
                var model = RecurrentFloat32Tests.Model("lstm", "2 layers");
                return model.Linearize(RecurrentFloat32Tests.Inputs(model, b: 2, t: 4));
            }
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(Linearisations))]
    public void StateMapsTakeSteps1ToStepsMinus1(string name)
    {
        var lin = Linearize(name);
        int size = lin.StateShape.Size;
        var x = TestMath.Gaussian(new Random(1), size);
        foreach (int bad in new[] { 0, lin.Steps })
        {
            var jvp = Assert.Throws<ArgumentOutOfRangeException>(() => lin.StateJvpAdd(bad, x, new double[size], 1));
            Assert.Contains($"StateJvpAdd: step {bad} outside 1..{lin.Steps - 1}", jvp.Message);
            var vjp = Assert.Throws<ArgumentOutOfRangeException>(() => lin.StateVjpAdd(bad, x, new double[size], 1));
            Assert.Contains($"StateVjpAdd: step {bad} outside 1..{lin.Steps - 1}", vjp.Message);
        }
        for (int k = 1; k < lin.Steps; k++)
        {
            var y = new double[size];
            lin.StateJvpAdd(k, x, y, 1);
            lin.StateVjpAdd(k, x, y, 1);
            Assert.Contains(y, v => v != 0);
        }
    }
}
