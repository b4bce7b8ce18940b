return GlobalNtk.Cli.CliApp.Run(args);
