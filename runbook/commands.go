package runbook

// Command is a command template run on a managed host. Templates are argv
// vectors, never shell strings; their placeholders are {unit}, filled from
// the inventory or the registry (an allow-listed unit name), and
// {queue_id}, a Postfix queue ID read from postqueue's output; never a value
// of an alert's labels.
type Command struct {
	Name string
	// Systemd and SysV are the argv on hosts with each service manager.
	Systemd []string
	SysV    []string
	// Doc says what the output tells a person.
	Doc string
}

// Placeholders of the templates.
const (
	// UnitPlaceholder is replaced by the service's unit name.
	UnitPlaceholder = "{unit}"
	// QueueIDPlaceholder is replaced by a queue ID from `postqueue -j`.
	QueueIDPlaceholder = "{queue_id}"
)

// Commands returns the table of commands ladders run, as a fresh table.
func Commands() []Command {
	return []Command{
		{Name: "processes", Systemd: []string{"ps", "-e", "-o", "stat=,comm=,args="},
			SysV: []string{"ps", "-e", "-o", "stat=,comm=,args="}, Doc: "live processes with their state (the runbook's ps check)"},
		{Name: "cpus", Systemd: []string{"nproc"},
			SysV: []string{"nproc"}, Doc: "online CPUs, for the load per CPU"},
		{Name: "is_active", Systemd: []string{"systemctl", "is-active", UnitPlaceholder},
			SysV: []string{"service", UnitPlaceholder, "status"}, Doc: "whether the unit runs"},
		{Name: "restart", Systemd: []string{"systemctl", "restart", UnitPlaceholder},
			SysV: []string{"service", UnitPlaceholder, "restart"}, Doc: "restart the unit"},
		{Name: "reboot", Systemd: []string{"systemctl", "reboot"},
			SysV: []string{"shutdown", "-r", "now"}, Doc: "reboot the host"},
		{Name: "top", Systemd: []string{"top", "-b", "-n", "1"},
			SysV: []string{"top", "-b", "-n", "1"}, Doc: "processes by CPU use"},
		{Name: "free", Systemd: []string{"free", "-m"},
			SysV: []string{"free", "-m"}, Doc: "memory and swap"},
		{Name: "df", Systemd: []string{"df", "-hP"},
			SysV: []string{"df", "-hP"}, Doc: "filesystem use"},
		{Name: "status", Systemd: []string{"systemctl", "status", "--no-pager", "--lines=0", UnitPlaceholder},
			SysV: []string{"service", UnitPlaceholder, "status"}, Doc: "the unit's state"},
		{Name: "journal", Systemd: []string{"journalctl", "--no-pager", "--lines=50", "--unit", UnitPlaceholder},
			SysV: []string{"tail", "-n", "50", "/var/log/syslog"}, Doc: "the unit's last log lines"},
		{Name: "mailq", Systemd: []string{"postqueue", "-j"},
			SysV: []string{"postqueue", "-j"}, Doc: "the mail queue as JSON lines"},
		{Name: "postcat", Systemd: []string{"postcat", "-e", "-q", QueueIDPlaceholder},
			SysV: []string{"postcat", "-e", "-q", QueueIDPlaceholder}, Doc: "a queued message's envelope, with its SASL user"},
	}
}

// CommandByName returns the named command template.
func CommandByName(name string) (Command, bool) {
	for _, c := range Commands() {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}
