// The konduit CLI (issue 17): operator commands on the store the application's Konduit configuration selects.
using Konduit.Cli;

using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C cancels the running command (which exits 130, or 0 for a watch); a second one kills the process.
    if (interrupt.IsCancellationRequested) return;
    e.Cancel = true;
    interrupt.Cancel();
};
return await KonduitCli.RunAsync(args, CliContext.FromProcess(), interrupt.Token).ConfigureAwait(false);
