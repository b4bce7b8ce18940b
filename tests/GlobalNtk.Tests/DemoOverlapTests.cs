using GlobalNtk.Cli.Commands;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The hand-off between the demo's training and the analysis that runs beside it.</summary>
public class DemoOverlapTests
{
    [Fact]
    public async Task GateReleasesAWaiterOnceTrainingReachesItsStep()
    {
        var gate = new StepGate();
        gate.Reached(0);
        gate.WaitFor(0);  // already reached: returns at once
        var waiter = Task.Run(() => gate.WaitFor(5));
        gate.Reached(4);
        Assert.NotSame(waiter, await Task.WhenAny(waiter, Task.Delay(100)));  // step 4 is not step 5
        gate.Reached(5);
        await waiter.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task GateFailsAWaiterWhenTrainingEndsBeforeItsStep()
    {
        var gate = new StepGate();
        gate.Reached(3);
        var waiter = Task.Run(() => gate.WaitFor(6));
        gate.Close();
        await Assert.ThrowsAsync<OperationCanceledException>(() => waiter.WaitAsync(TimeSpan.FromSeconds(30)));
        gate.WaitFor(3);  // a step reached before the end still counts
    }
}
