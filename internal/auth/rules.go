package auth

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

var (
	users   = []Role{RoleClient, RoleAdmin}
	readers = []Role{RoleClient, RoleAdmin, RoleReader}
	admins  = []Role{RoleAdmin}
	masters = []Role{RoleMaster}
	// mastersAndAdmins: the leader asks a joining master; admins may look.
	mastersAndAdmins = []Role{RoleMaster, RoleAdmin}
	// readersAndMasters: what readers may look at, and a following
	// master fetches from the leader for its console.
	readersAndMasters = []Role{RoleClient, RoleAdmin, RoleReader, RoleMaster}
	servers           = []Role{RoleChunkserver}
)

// Rules maps every RPC of Catena's services to the roles that may call it.
// A method missing from it is refused to everyone.
var Rules = map[string][]Role{
	// Clients: the namespace, volumes, status; readers only look.
	api.Master_Mkdir_FullMethodName:          users,
	api.Master_Create_FullMethodName:         users,
	api.Master_Lookup_FullMethodName:         readers,
	api.Master_List_FullMethodName:           readers,
	api.Master_Rename_FullMethodName:         users,
	api.Master_Remove_FullMethodName:         users,
	api.Master_SetSize_FullMethodName:        users,
	api.Master_GetChunks_FullMethodName:      readers,
	api.Master_AllocateChunk_FullMethodName:  users,
	api.Master_Status_FullMethodName:         readers,
	api.Master_SetReplication_FullMethodName: users,
	api.Master_Snapshot_FullMethodName:       users,
	api.Master_ListSnapshots_FullMethodName:  readers,
	api.Master_RemoveSnapshot_FullMethodName: users,
	api.Master_Clone_FullMethodName:          users,
	api.Master_Concat_FullMethodName:         users,
	// Chunkservers report to the master.
	api.Master_Register_FullMethodName:      servers,
	api.Master_Heartbeat_FullMethodName:     servers,
	api.Master_ReportReplica_FullMethodName: servers,

	// The master group: only admins change it; masters join it.
	api.Admin_AddMaster_FullMethodName:         admins,
	api.Admin_RemoveMaster_FullMethodName:      admins,
	api.Admin_DrainChunkserver_FullMethodName:  admins,
	api.Admin_RemoveChunkserver_FullMethodName: admins,
	api.Admin_Rebalance_FullMethodName:         admins,
	api.Admin_ListMasters_FullMethodName:       readers,
	api.Admin_RegisterMaster_FullMethodName:    masters,
	api.Admin_Progress_FullMethodName:          mastersAndAdmins,
	api.Admin_ConsoleSnapshot_FullMethodName:   readersAndMasters,

	// Data: clients read and write; the master configures replicas;
	// chunkservers replicate between them.
	api.Chunkserver_Write_FullMethodName:            users,
	api.Chunkserver_Read_FullMethodName:             readers,
	api.Chunkserver_CreateReplica_FullMethodName:    masters,
	api.Chunkserver_Reconfigure_FullMethodName:      masters,
	api.Chunkserver_ReconfigureBatch_FullMethodName: masters,
	api.Chunkserver_ReplicaSpace_FullMethodName:     masters,
	api.Chunkserver_Replicate_FullMethodName:        masters,
	api.Chunkserver_RestoreBlocks_FullMethodName:    masters,
	api.Chunkserver_CloneReplica_FullMethodName:     masters,
	api.Chunkserver_Chain_FullMethodName:            servers,
	api.Chunkserver_Fetch_FullMethodName:            servers,
	// A mirror lists the blocks two replicas differ in, as it reads them.
	api.ReplicaDiff_DiffReplicas_FullMethodName: readers,

	api.FS_LookupChild_FullMethodName: readers,
	api.FS_Getattr_FullMethodName:     readers,
	api.FS_Setattr_FullMethodName:     users,
	api.FS_Readdir_FullMethodName:     readers,
	api.FS_Create_FullMethodName:      users,
	api.FS_Mkdir_FullMethodName:       users,
	api.FS_Symlink_FullMethodName:     users,
	api.FS_Link_FullMethodName:        users,
	api.FS_Unlink_FullMethodName:      users,
	api.FS_Rmdir_FullMethodName:       users,
	api.FS_Rename_FullMethodName:      users,
	api.FS_Readlink_FullMethodName:    readers,
	api.FS_GetXattr_FullMethodName:    readers,
	api.FS_ListXattr_FullMethodName:   readers,
	api.FS_SetXattr_FullMethodName:    users,
	api.FS_RemoveXattr_FullMethodName: users,
	api.FS_Statfs_FullMethodName:      readers,
	api.FS_Mknod_FullMethodName:       users,
	api.FS_RenewMount_FullMethodName:  readers,
	api.FS_EndMount_FullMethodName:    readers,
	api.FS_Hold_FullMethodName:        readers,
	api.FS_Unhold_FullMethodName:      readers,

	api.Volumes_CreateVolume_FullMethodName:         users,
	api.Volumes_ListVolumes_FullMethodName:          readers,
	api.Volumes_GetVolume_FullMethodName:            readers,
	api.Volumes_RemoveVolume_FullMethodName:         users,
	api.Volumes_ResizeVolume_FullMethodName:         users,
	api.Volumes_SnapshotVolume_FullMethodName:       users,
	api.Volumes_ListVolumeSnapshots_FullMethodName:  readers,
	api.Volumes_RemoveVolumeSnapshot_FullMethodName: users,
	api.Volumes_CloneVolume_FullMethodName:          users,
	api.Volumes_RollbackVolume_FullMethodName:       users,
	api.Volumes_AttachOverlay_FullMethodName:        users,
	api.Volumes_ListOverlays_FullMethodName:         readers,
	api.Volumes_DetachOverlay_FullMethodName:        users,
	api.Volumes_PromoteOverlay_FullMethodName:       users,
	api.Volumes_AttachWriter_FullMethodName:         users,
	api.Volumes_RenewWriter_FullMethodName:          users,
	api.Volumes_ReleaseWriter_FullMethodName:        users,
}

// Allowed reports whether a caller proving role may call method.
func Allowed(method string, role Role) bool {
	return slices.Contains(Rules[method], role)
}

// check is nil when the caller of method on ctx may call it: its
// certificate's role is in Rules.
func check(ctx context.Context, method string) error {
	role, name, ok := PeerIdentity(ctx)
	if !ok {
		return rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "%s: no client certificate", method)
	}
	if !Allowed(method, role) {
		return rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "%s: %q holds role %s, which may not call it", method, name, role)
	}
	return nil
}

// ServerOptions are the options of a gRPC server that takes only callers
// with a certificate of the cluster CA and checks each call against Rules.
func (c *Creds) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		c.ServerOption(),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
