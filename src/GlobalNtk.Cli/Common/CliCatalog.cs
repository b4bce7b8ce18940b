using System.Reflection;
using Spectre.Console.Cli;
using Spectre.Console.Cli.Help;

namespace GlobalNtk.Cli.Common;

/// <summary>One registered command: its name and the option names its settings accept.</summary>
public sealed record CliCommandInfo(string Name, Type SettingsType)
{
    /// <summary>Every option name of the command, with dashes (<c>--steps</c>, <c>-o</c>), plus <c>--help</c>/<c>-h</c>.</summary>
    public IReadOnlyList<string> Options { get; } = OptionsOf(SettingsType);

    private static string[] OptionsOf(Type settings)
    {
        var names = new List<string> { "--help", "-h" };
        foreach (var p in settings.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (p.GetCustomAttribute<CommandOptionAttribute>() is { } o)
            {
                names.AddRange(o.LongNames.Select(n => "--" + n));
                names.AddRange(o.ShortNames.Select(n => "-" + n));
            }
        return names.Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
    }
}

/// <summary>
/// The commands as registered with Spectre, recorded while <see cref="CliApp"/> configures them,
/// so <c>help</c>, did-you-mean suggestions and the JSON envelope use the same names.
/// </summary>
public sealed class CliCatalog
{
    private readonly List<CliCommandInfo> _commands = [];

    /// <summary>The registered commands in registration order.</summary>
    public IReadOnlyList<CliCommandInfo> Commands => _commands;

    /// <summary>The command named <paramref name="name"/> (case-insensitive), or null.</summary>
    public CliCommandInfo? Find(string name) =>
        _commands.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Wraps <paramref name="inner"/> so every <c>AddCommand</c> is recorded here.</summary>
    public IConfigurator Recording(IConfigurator inner) => new RecordingConfigurator(inner, this);

    private void Add(string name, Type commandType) => _commands.Add(new CliCommandInfo(name, SettingsTypeOf(commandType)));

    private static Type SettingsTypeOf(Type command)
    {
        for (var t = command; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Command<>)) return t.GetGenericArguments()[0];
        return typeof(CommandSettings);
    }

    private sealed class RecordingConfigurator(IConfigurator inner, CliCatalog catalog) : IConfigurator
    {
        public ICommandAppSettings Settings => inner.Settings;
        public IConfigurator SetHelpProvider(IHelpProvider helpProvider) { inner.SetHelpProvider(helpProvider); return this; }
        public IConfigurator SetHelpProvider<T>() where T : IHelpProvider { inner.SetHelpProvider<T>(); return this; }
        public IConfigurator AddExample(params string[] args) { inner.AddExample(args); return this; }

        public ICommandConfigurator AddCommand<TCommand>(string name) where TCommand : class, ICommand
        {
            catalog.Add(name, typeof(TCommand));
            return inner.AddCommand<TCommand>(name);
        }

        public ICommandConfigurator AddDelegate<TSettings>(string name, Func<CommandContext, TSettings, CancellationToken, int> func) where TSettings : CommandSettings
        {
            catalog._commands.Add(new CliCommandInfo(name, typeof(TSettings)));
            return inner.AddDelegate(name, func);
        }

        public ICommandConfigurator AddAsyncDelegate<TSettings>(string name, Func<CommandContext, TSettings, CancellationToken, Task<int>> func) where TSettings : CommandSettings
        {
            catalog._commands.Add(new CliCommandInfo(name, typeof(TSettings)));
            return inner.AddAsyncDelegate(name, func);
        }

        public IBranchConfigurator AddBranch<TSettings>(string name, Action<IConfigurator<TSettings>> action) where TSettings : CommandSettings
        {
            catalog._commands.Add(new CliCommandInfo(name, typeof(TSettings)));
            return inner.AddBranch(name, action);
        }
    }
}
