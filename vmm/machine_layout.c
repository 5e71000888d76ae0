#include "machine_layout.h"

#include "../devices/acpi_pm.h"
#include "../devices/pci.h"

static const struct firmware_machine firmware_machine = {
	.low_ram_end = LAYOUT_PCI_HOLE_START,
	.ioapic_address = LAYOUT_IOAPIC_ADDRESS,
	.lapic_address = LAYOUT_LAPIC_ADDRESS,
	.pci_mmio_start = LAYOUT_PCI_MMIO_START,
	.pci_mmio_end = LAYOUT_PCI_MMIO_END,
	.pci_config_port = LAYOUT_PCI_CONFIG_PORT,
	.pci_config_port_count = PCI_CONFIG_PORT_COUNT,
	.pm1_event_port = LAYOUT_ACPI_PM1_EVENT_PORT,
	.pm1_event_length = ACPI_PM1_EVENT_LENGTH,
	.pm1_control_port = LAYOUT_ACPI_PM1_CONTROL_PORT,
	.pm1_control_length = ACPI_PM1_CONTROL_LENGTH,
	.sci_gsi = LAYOUT_ACPI_SCI_GSI,
	.s5_sleep_type = LAYOUT_ACPI_S5_SLEEP_TYPE,
};

const struct firmware_machine *machine_layout_firmware(void)
{
	return &firmware_machine;
}
