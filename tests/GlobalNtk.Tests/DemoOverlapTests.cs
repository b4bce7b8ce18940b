using GlobalNtk.Cli.Commands;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The hand-off between the demo's training and the analysis that runs beside it.</summary>
public class DemoOverlapTests
{
    [Fact]
    public void GateReleasesAWaiterOnceTrainingReachesItsStep()
    {
        var gate = new StepGate();
        gate.Reached(0);
        gate.WaitFor(0);  // already reached: returns at once
        var waiter = Task.Run(() => gate.WaitFor(5));
        gate.Reached(4);
        Assert.False(waiter.Wait(100));  // step 4 is not step 5
        gate.Reached(5);
        Assert.True(waiter.Wait(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void GateFailsAWaiterWhenTrainingEndsBeforeItsStep()
    {
        var gate = new StepGate();
        gate.Reached(3);
        var waiter = Task.Run(() => gate.WaitFor(6));
        gate.Close();
        var e = Assert.Throws<AggregateException>(() => waiter.Wait(TimeSpan.FromSeconds(30)));
        Assert.IsType<OperationCanceledException>(e.InnerException);
        gate.WaitFor(3);  // a step reached before the end still counts
    }
}
