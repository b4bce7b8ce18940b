namespace GlobalNtk.Dense;

/// <summary>
/// A tuning setting with a fixed production default that tests may override for the current
/// logical call only (AsyncLocal: the override flows into tasks and Parallel.For bodies started
/// inside the scope, and is invisible to tests running concurrently on other threads).
/// </summary>
/// <typeparam name="T">The setting's value type.</typeparam>
internal sealed class ScopedSetting<T>(T defaultValue) where T : struct
{
    private readonly AsyncLocal<T?> _override = new();
    private volatile bool _everOverridden; // skips the AsyncLocal read in production

    /// <summary>The production value (never changes).</summary>
    public T Default { get; } = defaultValue;

    /// <summary>The value in effect for the current logical call.</summary>
    public T Value => _everOverridden && _override.Value is T v ? v : Default;

    /// <summary>Uses <paramref name="value"/> until the returned scope is disposed (then the previous value again).</summary>
    public IDisposable Override(T value)
    {
        _everOverridden = true;
        var previous = _override.Value;
        _override.Value = value;
        return new Scope(this, previous);
    }

    private sealed class Scope(ScopedSetting<T> owner, T? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            owner._override.Value = previous;
        }
    }
}
