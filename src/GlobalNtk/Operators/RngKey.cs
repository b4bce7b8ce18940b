namespace GlobalNtk.Operators;

/// <summary>
/// The one way randomness is seeded (JAX <c>random.split</c> style): a run has one key, made
/// from the user's seed, and every consumer gets its own key by folding a name or an index into
/// it, never by adding an offset to the seed. Keys are plain values (same seed → same keys on
/// every run and platform); <see cref="CreateRandom"/> turns a key into a generator.
/// </summary>
/// <remarks>
/// Folding mixes with SplitMix64 (Steele, Lea &amp; Flood 2014), a bijective 64-bit finaliser, so
/// keys folded from nearby seeds or indices are unrelated. The key of a seed itself is not mixed:
/// <c>RngKey.FromSeed(s).CreateRandom()</c> is <c>new Random(s)</c> for s ≥ 0, so an estimator
/// called with a seed draws the same stream it always has. Strings are hashed with 64-bit FNV-1a
/// (not <see cref="string.GetHashCode()"/>, which changes between processes).
/// </remarks>
public readonly record struct RngKey
{
    private readonly ulong _state;

    private RngKey(ulong state) => _state = state;

    /// <summary>The root key of a run seeded with <paramref name="seed"/>.</summary>
    public static RngKey FromSeed(int seed) => new((uint)seed);

    /// <summary>The child key for consumer <paramref name="index"/> (e.g. training batch i, weight site s).</summary>
    public RngKey Fold(long index) => new(Mix(_state ^ Mix(unchecked((ulong)index + IndexSalt))));

    /// <summary>The child key for the consumer named <paramref name="name"/> (e.g. "init", "NTK_S spectrum").</summary>
    public RngKey Fold(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ulong h = 0xCBF29CE484222325UL;   // FNV-1a offset basis
        foreach (char c in name) { h ^= c; h *= 0x100000001B3UL; }
        return new(Mix(_state ^ Mix(h ^ NameSalt)));
    }

    /// <summary><paramref name="count"/> independent child keys: <c>Fold(0)</c> … <c>Fold(count − 1)</c>.</summary>
    public RngKey[] Split(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var keys = new RngKey[count];
        for (int i = 0; i < count; i++) keys[i] = Fold(i);
        return keys;
    }

    /// <summary>
    /// The key as a non-negative 31-bit seed, for the APIs that take an <c>int seed</c> (every
    /// estimator: <c>(operator, probes, seed)</c>). <c>FromSeed(Seed)</c> gives this key's stream back.
    /// </summary>
    public int Seed => (int)(_state & 0x7FFFFFFF);

    /// <summary>A generator for this key (System.Random's seeded algorithm, the same on every platform).</summary>
    public Random CreateRandom() => new(Seed);

    private const ulong IndexSalt = 0x632BE59BD9B4E019UL, NameSalt = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's finaliser.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
