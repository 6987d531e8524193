// A chaos worker: the public runtime on the store named by "Konduit:Store" (all settings come from the command
// line), with one handler that records its effect in Postgres keyed by (task id, lease token) before returning.
// The chaos tests count those rows on the server; this process keeps no counts of its own, it may be SIGKILLed
// at any moment.
//
//   Konduit.Chaos.Worker --Konduit:Store=Postgres --Konduit:Postgres:ConnectionString=... --Chaos:Queue=q
//       --Chaos:EffectsConnectionString=... --Chaos:EffectsTable=schema.effects --Chaos:WorkMilliseconds=50
using Konduit.Chaos.Worker;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
    DisableDefaults = true,
});
builder.Configuration.AddCommandLine(args);
builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
builder.Logging.SetMinimumLevel(LogLevel.Warning);

var settings = ChaosSettings.From(builder.Configuration);
builder.Services.AddSingleton(settings);
builder.Services.AddSingleton<EffectRecorder>();
builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"))
    .AddHandler<ChaosHandler>(settings.Queue);

using var host = builder.Build();
await host.StartAsync();
// The test waits for this line before it counts the worker as started.
Console.WriteLine("chaos-worker: started");
await host.WaitForShutdownAsync();
return 0;
