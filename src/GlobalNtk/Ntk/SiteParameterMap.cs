using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>
/// Which parameters of θ the weight sites cover (docs/math.md#kronecker-core) and which are left to the generic
/// J_θ J_θ* form (LayerNorm gains, embeddings…). Validates each site against the parameter set:
/// weights [OutDim, width_i] with Σ width_i = Width, biases [OutDim], Û of Rows × AugmentedWidth,
/// and no parameter claimed by two sites.
/// </summary>
internal sealed class SiteParameterMap
{
    /// <summary>Parameter indices not covered by any site, in θ order.</summary>
    public IReadOnlyList<int> Rest { get; }
    /// <summary>Total number of scalars in <see cref="Rest"/>.</summary>
    public int RestSize { get; }

    public SiteParameterMap(ChainLinearization lin)
    {
        var ps = lin.Parameters;
        var owner = new string?[ps.Count];
        foreach (var site in lin.Sites)
        {
            int width = 0;
            foreach (var name in site.WeightParameters)
            {
                var p = Claim(ps, owner, site, name);
                if (p.Shape.Length != 2 || p.Shape[0] != site.OutDim)
                    throw new ArgumentException($"Site '{site.Name}': weight '{name}' has shape {p.ShapeText}, expected [{site.OutDim}, width].");
                width += p.Shape[1];
            }
            if (width != site.Width)
                throw new ArgumentException($"Site '{site.Name}': weights [{string.Join(", ", site.WeightParameters)}] have {width} columns in all, but the site width is {site.Width}.");
            foreach (var name in site.BiasParameters)
            {
                var p = Claim(ps, owner, site, name);
                if (p.Size != site.OutDim)
                    throw new ArgumentException($"Site '{site.Name}': bias '{name}' has shape {p.ShapeText}, expected [{site.OutDim}].");
            }
            long expected = (long)site.Rows * site.AugmentedWidth;
            if (site.VariablesLength != expected)
                throw new ArgumentException($"Site '{site.Name}': Û has {site.VariablesLength} elements, expected Rows × AugmentedWidth = {site.Rows} × {site.AugmentedWidth}.");
            if (site.RowShape.Size != site.Rows)
                throw new ArgumentException($"Site '{site.Name}': row shape {site.RowShape} does not have {site.Rows} rows.");
        }
        var rest = new List<int>();
        int restSize = 0;
        for (int i = 0; i < ps.Count; i++)
            if (owner[i] is null) { rest.Add(i); restSize += ps[i].Size; }
        Rest = rest;
        RestSize = restSize;
    }

    private static Parameter Claim(ParameterSet ps, string?[] owner, WeightSite site, string name)
    {
        if (!ps.Contains(name))
            throw new ArgumentException($"Site '{site.Name}': parameter '{name}' is not among the model's parameters ({string.Join(", ", ps.Select(p => p.Name))}).");
        int i = ps.IndexOf(name);
        if (owner[i] is not null)
            throw new ArgumentException($"Parameter '{name}' is claimed by two sites, '{owner[i]}' and '{site.Name}'.");
        owner[i] = site.Name;
        return ps[i];
    }
}
