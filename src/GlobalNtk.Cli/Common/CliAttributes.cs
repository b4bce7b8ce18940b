using System.ComponentModel;
using GlobalNtk.IO;
using GlobalNtk.Tasks;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// Leaves a nullable option null when it is omitted, although it carries a <c>[DefaultValue]</c>
/// that help shows. Commands that must tell "given" from "omitted" (<c>train --resume</c>,
/// budget presets) use it; they apply the same <see cref="CliDefaults"/> constant themselves.
/// </summary>
/// <remarks>Spectre asks a value provider before applying <c>[DefaultValue]</c> to an omitted option.</remarks>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NullWhenOmittedAttribute : ParameterValueProviderAttribute
{
    /// <inheritdoc/>
    public override bool TryGetValue(CommandParameterContext context, out object? result)
    {
        result = null;
        return context.Value is null;
    }
}

/// <summary>A help description that ends with the registered task names (always complete).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class TaskListDescriptionAttribute(string text) : DescriptionAttribute(text)
{
    /// <inheritdoc/>
    public override string Description => $"{DescriptionValue} Tasks: {string.Join(", ", TaskRegistry.Names)}.";
}

/// <summary>A help description that ends with the registered architectures (always complete).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ArchListDescriptionAttribute(string text) : DescriptionAttribute(text)
{
    /// <inheritdoc/>
    public override string Description => $"{DescriptionValue} Architectures: {string.Join(", ", ModelRegistry.Architectures)}.";
}
