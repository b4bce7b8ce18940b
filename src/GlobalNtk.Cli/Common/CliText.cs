using System.Text.RegularExpressions;

namespace GlobalNtk.Cli.Common;

/// <summary>Text conversions shared by the CLI's outputs.</summary>
public static partial class CliText
{
    /// <summary>
    /// The report's inline Markdown as plain text: <c>**bold**</c> and <c>`code`</c> lose their
    /// marks, <c>![alt](file)</c> becomes "alt (file)". Underscores stay (they are part of names such as NTK_S).
    /// </summary>
    public static string PlainFromMarkdown(string markdown)
    {
        string s = ImageLink().Replace(markdown, "$1 ($2)");
        return s.Replace("**", "").Replace("`", "");
    }

    [GeneratedRegex(@"!\[([^\]]*)\]\(([^)]*)\)")]
    private static partial Regex ImageLink();
}
